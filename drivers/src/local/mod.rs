//! The local driver: a host is a root directory on this machine. Every
//! path a step names is confined inside that root (see `paths`): reached
//! from a handle on the root opened once, never through a symlink
//! (see `handle`).

mod cgroup;
mod check;
mod files;
mod handle;
mod inspect;
mod janitor;
mod keep;
mod paths;
mod procfs;
mod reap;
mod remove;
mod run;
mod stash;
mod tail;
mod tree;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_wire::change::{Action, Command, StepResult};

pub use inspect::RootDir;
pub use keep::SERVICE_ENV;
pub use procfs::STEP_MARK_ENV;
pub use run::HOST_ROOT_ENV;

use crate::{Driver, DriverError, OutputSink};
use handle::DirFd;
use reap::StepMark;

pub struct LocalDriver {
    root: PathBuf,
    /// The root, opened once: every file operation starts from it.
    dir: DirFd,
    /// Gets the whole output of the step's commands (the plug's logs).
    output: Option<Arc<dyn OutputSink>>,
}

impl std::fmt::Debug for LocalDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalDriver")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl LocalDriver {
    /// `root` must be an existing directory. It is canonicalised once (it
    /// may itself sit behind a symlink); below it, no symlink is followed.
    pub fn new(root: impl Into<PathBuf>) -> Result<LocalDriver, DriverError> {
        let root = root.into();
        let bad = |reason: String| DriverError::BadRoot {
            path: root.clone(),
            reason,
        };
        let meta = fs::metadata(&root).map_err(|e| bad(e.to_string()))?;
        if !meta.is_dir() {
            return Err(bad("not a directory".into()));
        }
        let root = fs::canonicalize(&root).map_err(|e| bad(e.to_string()))?;
        let dir = DirFd::open(&root).map_err(|e| bad(e.to_string()))?;
        Ok(LocalDriver {
            root,
            dir,
            output: None,
        })
    }

    /// Copies every byte the steps' commands print to `sink` too.
    pub fn with_output(mut self, sink: Arc<dyn OutputSink>) -> Self {
        self.output = Some(sink);
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn run_step(
        &self,
        command: &Command,
        env: &[(String, String)],
        cwd: Option<&str>,
        timeout_ms: u64,
        mark: &StepMark,
    ) -> Result<StepResult, DriverError> {
        let cwd = paths::confine(&self.root, cwd.unwrap_or("/"))?;
        let Some(dir) = paths::open_dir(&self.dir, &cwd)? else {
            return Ok(StepResult::failed(format!(
                "working directory {} is not a directory",
                cwd.display
            )));
        };
        Ok(run::run(&run::Invocation {
            command,
            env,
            cwd: &dir.proc_path(),
            pwd: &cwd.full,
            root: &self.root,
            timeout: Duration::from_millis(timeout_ms),
            mark,
            output: self.output.clone(),
        }))
    }

    fn apply_inner(&self, action: &Action, stash: &Path) -> Result<StepResult, DriverError> {
        match action {
            Action::Run {
                command,
                env,
                cwd,
                timeout_ms,
                ..
            } => {
                let mark = StepMark::record_fresh(stash)?;
                self.run_step(command, env, cwd.as_deref(), *timeout_ms, &mark)
            }
            Action::File {
                path,
                content,
                mode,
            } => files::apply(&self.dir, path, content, *mode, stash),
            Action::Remove { path } => remove::apply(&self.dir, path, stash),
            // Its values are sealed: only the plug opens them (into a File).
            Action::SecretFile { .. } => Err(DriverError::BadStep(
                "a secret file is opened by the plug, never by a driver".into(),
            )),
            Action::Check {
                probe,
                retries,
                interval_ms,
                timeout_ms,
            } => Ok(check::check(
                &self.root,
                probe,
                &check::Schedule {
                    retries: *retries,
                    interval: Duration::from_millis(*interval_ms),
                    timeout: Duration::from_millis(*timeout_ms),
                },
                &StepMark::record_fresh(stash)?,
            )),
        }
    }

    fn undo_inner(&self, action: &Action, stash: &Path) -> Result<StepResult, DriverError> {
        if matches!(action, Action::Run { .. } | Action::Check { .. }) {
            // The step may have been cut off by a crash: what it started
            // must be gone before the undo touches the host.
            if let Some(mark) = StepMark::recorded(stash)? {
                mark.kill_all();
            }
        }
        match action {
            Action::Run {
                undo: Some(command),
                env,
                cwd,
                timeout_ms,
                ..
            } => {
                let mark = StepMark::record_fresh(stash)?;
                self.run_step(command, env, cwd.as_deref(), *timeout_ms, &mark)
            }
            Action::Run { undo: None, .. } => Ok(StepResult::ok("no undo command")),
            Action::File { path, .. } | Action::SecretFile { path, .. } => {
                files::undo(&self.dir, path, stash)
            }
            Action::Remove { path } => remove::undo(&self.dir, path, stash),
            Action::Check { .. } => Ok(StepResult::ok("nothing to undo for a check")),
        }
    }
}

fn validate_command(command: &Command) -> Result<(), DriverError> {
    match command {
        Command::Argv(argv) if argv.is_empty() => Err(DriverError::BadStep("empty command".into())),
        _ => Ok(()),
    }
}

/// A result whatever happened, timed.
fn finish(
    what: &'static str,
    action: &Action,
    started: Instant,
    result: Result<StepResult, DriverError>,
) -> StepResult {
    let mut result = result.unwrap_or_else(|e| StepResult::failed(e.to_string()));
    result.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    tracing::debug!(
        event = what,
        kind = action.kind(),
        ok = result.ok,
        summary = %result.summary,
        duration_ms = result.duration_ms,
    );
    result
}

impl Driver for LocalDriver {
    fn name(&self) -> &'static str {
        "local"
    }

    fn prepare(&mut self, action: &Action, stash: &Path) -> Result<(), DriverError> {
        match action {
            Action::Run {
                command, undo, cwd, ..
            } => {
                validate_command(command)?;
                if let Some(undo) = undo {
                    validate_command(undo)?;
                }
                let cwd = paths::confine(&self.root, cwd.as_deref().unwrap_or("/"))?;
                paths::open_dir(&self.dir, &cwd).map(drop)
            }
            Action::File { path, .. } | Action::SecretFile { path, .. } => {
                files::prepare(&self.dir, path, stash)
            }
            Action::Remove { path } => remove::prepare(&self.dir, path, stash),
            Action::Check { probe, .. } => check::validate(probe),
        }
    }

    fn apply(&mut self, action: &Action, stash: &Path) -> StepResult {
        let started = Instant::now();
        let result = self.apply_inner(action, stash);
        finish("step_applied", action, started, result)
    }

    fn undo(&mut self, action: &Action, stash: &Path) -> StepResult {
        let started = Instant::now();
        let result = self.undo_inner(action, stash);
        finish("step_undone", action, started, result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_must_be_an_existing_directory() {
        let base = tempfile::tempdir().unwrap();
        let missing = base.path().join("missing");
        let err = LocalDriver::new(&missing).unwrap_err();
        assert!(err.to_string().contains("missing"), "{err}");
        let file = base.path().join("file");
        fs::write(&file, b"").unwrap();
        let err = LocalDriver::new(&file).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        assert!(LocalDriver::new(base.path()).is_ok());
    }

    #[test]
    fn a_root_behind_a_symlink_is_resolved_once() {
        let base = tempfile::tempdir().unwrap();
        fs::create_dir(base.path().join("real")).unwrap();
        std::os::unix::fs::symlink("real", base.path().join("alias")).unwrap();
        let driver = LocalDriver::new(base.path().join("alias")).unwrap();
        assert_eq!(
            driver.root(),
            fs::canonicalize(base.path().join("real")).unwrap()
        );
    }

    /// The stash holds copies of host files and entries removed from the
    /// host: only the driver's user may read it.
    #[test]
    fn the_stash_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let stash = tempfile::tempdir().unwrap();
        fs::write(root.path().join("f"), b"secret").unwrap();
        fs::set_permissions(root.path().join("f"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(stash.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let mut driver = LocalDriver::new(root.path()).unwrap();
        let action = Action::File {
            path: "/f".into(),
            content: b"x".to_vec(),
            mode: None,
        };
        driver.prepare(&action, stash.path()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(stash.path()), 0o700);
        for record in fs::read_dir(stash.path()).unwrap() {
            let record = record.unwrap().path();
            assert_eq!(mode(&record), 0o600, "{}", record.display());
        }
        assert_eq!(fs::read_dir(stash.path()).unwrap().count(), 2);
    }

    #[test]
    fn apply_without_prepare_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let stash = tempfile::tempdir().unwrap();
        let mut driver = LocalDriver::new(root.path()).unwrap();
        let action = Action::File {
            path: "/f".into(),
            content: b"x".to_vec(),
            mode: None,
        };
        let result = driver.apply(&action, stash.path());
        assert!(!result.ok);
        assert!(
            result.summary.contains("not prepared"),
            "{}",
            result.summary
        );
        assert!(!root.path().join("f").exists());
    }
}
