//! Runs a command for a Run step, its undo, or a command probe: in its own
//! process group, output tails captured, killed with the whole group when
//! it outlives its timeout. When it ends, exited or killed, whatever it
//! left behind is killed too (its group, and what the kernel tracks of it:
//! its cgroup or, failing that, this process's orphaned descendants, see
//! `reap`): a step's commands never outlive it, but for the services it
//! hands over (see `keep`).

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use vigie_wire::change::{Command, StepResult};
use wait_timeout::ChildExt;

use super::procfs::STEP_MARK_ENV;
use super::reap::{Contained, StepMark};
use super::tail::TailReader;

/// After the command ended, how long its output may take to drain. A
/// background process it left behind may hold the pipes open for ever;
/// the result does not wait for it.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// The environment variable naming the host root for every command.
pub const HOST_ROOT_ENV: &str = "VIGIE_HOST_ROOT";

pub(crate) struct Invocation<'a> {
    pub command: &'a Command,
    pub env: &'a [(String, String)],
    /// Where the command starts; may be a `/proc/self/fd` name.
    pub cwd: &'a Path,
    /// The working directory's path as the command should see it.
    pub pwd: &'a Path,
    pub root: &'a Path,
    pub timeout: Duration,
    /// Carried by every process the command starts.
    pub mark: &'a StepMark,
    /// Gets the whole output, not only its tail.
    pub output: Option<std::sync::Arc<dyn crate::OutputSink>>,
}

enum Outcome {
    Exited(ExitStatus),
    TimedOut,
    WaitFailed(std::io::Error),
}

/// A short description for summaries and logs.
pub(crate) fn describe(command: &Command) -> String {
    match command {
        Command::Argv(argv) => argv.join(" "),
        Command::Shell(line) => line.clone(),
    }
}

pub(crate) fn run(inv: &Invocation<'_>) -> StepResult {
    let program = match inv.command {
        Command::Argv(argv) => match argv.first() {
            Some(program) => program.as_str(),
            None => return StepResult::failed("empty command"),
        },
        Command::Shell(_) => "/bin/sh",
    };
    if let Err(e) = startable(program, inv) {
        return StepResult::failed(format!("cannot start {}: {e}", describe(inv.command)));
    }
    let mut contained = Contained::new(inv.mark);
    let mut cmd = contained.command(inv.command);
    cmd.current_dir(inv.cwd)
        // Ours is the caller's; a shell trusts $PWD for `pwd`.
        .env("PWD", inv.pwd)
        .envs(inv.env.iter().map(|(k, v)| (k, v)))
        .env(HOST_ROOT_ENV, inv.root)
        .env(STEP_MARK_ENV, inv.mark.value())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so a timeout kills everything it started.
        .process_group(0);
    // Before the first command: what it leaves behind dies with us.
    super::janitor::ensure_started(super::reap::cgroup_parent());
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            contained.end();
            return StepResult::failed(format!("cannot start {}: {e}", describe(inv.command)));
        }
    };
    let stdout = TailReader::spawn(child.stdout.take(), "stdout", inv.output.clone());
    let stderr = TailReader::spawn(child.stderr.take(), "stderr", inv.output.clone());
    let pid = child.id();
    contained.started(pid);
    tracing::debug!(event = "step_started", pid, command = %describe(inv.command));

    let outcome = match child.wait_timeout(inv.timeout) {
        Ok(Some(status)) => Outcome::Exited(status),
        Ok(None) => {
            kill_group(pid);
            tracing::warn!(
                event = "step_killed",
                pid,
                timeout_ms = inv.timeout.as_millis() as u64
            );
            let _ = child.wait();
            Outcome::TimedOut
        }
        Err(e) => {
            kill_group(pid);
            let _ = child.wait();
            Outcome::WaitFailed(e)
        }
    };
    // What it left behind (holding the output pipes, maybe) goes now.
    kill_group(pid);
    contained.end();
    let deadline = Instant::now() + DRAIN_GRACE;
    let stdout_tail = stdout.finish(deadline);
    let stderr_tail = stderr.finish(deadline);

    let (ok, exit_code, summary) = summarize(outcome, inv.timeout);
    StepResult {
        ok,
        summary,
        exit_code,
        stdout_tail,
        stderr_tail,
        ..StepResult::default()
    }
}

/// Whether `program` names an executable file, found as `exec` finds it
/// (a path from the working directory, else each `PATH` entry): the step
/// is told "cannot start" rather than the exit status of the shell that
/// would have failed to `exec` it (see `reap`'s cgroup join).
fn startable(program: &str, inv: &Invocation<'_>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let found = if program.contains('/') {
        executable(&inv.cwd.join(program))
    } else {
        let path = inv
            .env
            .iter()
            .rev()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| std::ffi::OsString::from(v))
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        std::env::split_paths(&path).any(|dir| executable(&dir.join(program)))
    };
    if found {
        Ok(())
    } else {
        Err(std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// Whether the command succeeded, its exit code and what the step says.
fn summarize(outcome: Outcome, timeout: Duration) -> (bool, Option<i32>, String) {
    match outcome {
        Outcome::Exited(status) => match (status.code(), status.signal()) {
            (Some(code), _) => (code == 0, Some(code), format!("exit {code}")),
            (None, Some(sig)) => (
                false,
                None,
                format!("killed by signal {}", signal_name(sig)),
            ),
            (None, None) => (false, None, format!("ended with {status}")),
        },
        Outcome::TimedOut => (
            false,
            None,
            format!("timed out after {}s", timeout.as_secs_f64()),
        ),
        Outcome::WaitFailed(e) => (false, None, format!("cannot wait for the command: {e}")),
    }
}

fn kill_group(pid: u32) {
    let Ok(pgid) = i32::try_from(pid) else {
        return;
    };
    match killpg(Pid::from_raw(pgid), Signal::SIGKILL) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::warn!(event = "kill_failed", pgid, error = %e),
    }
}

fn signal_name(sig: i32) -> String {
    Signal::try_from(sig).map_or_else(|_| sig.to_string(), |s| s.as_str().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `line` in a shell as one step command rooted at `root`.
    fn shell(root: &std::path::Path, line: &str, secs: u64, mark: &StepMark) -> StepResult {
        run(&Invocation {
            command: &Command::Shell(line.into()),
            env: &[],
            cwd: root,
            pwd: root,
            root,
            timeout: Duration::from_secs(secs),
            mark,
            output: None,
        })
    }

    /// Runs the test `name` again in a process of its own with
    /// containment by subreaper (the mode is per process), and asserts it
    /// passed there.
    fn passes_under_a_subreaper(name: &str) {
        if std::env::var_os(super::super::reap::CONTAIN_ENV).is_some() {
            return;
        }
        let me = std::env::current_exe().unwrap();
        let out = std::process::Command::new(me)
            .args(["--exact", name, "--nocapture"])
            .env(super::super::reap::CONTAIN_ENV, "subreaper")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("1 passed"), "{text}");
    }

    /// A command that leaves a process in the background (holding the
    /// output pipes) returns once it exits, and the process is killed
    /// with it: a step's commands never outlive the step.
    #[test]
    fn a_background_process_dies_with_a_command_that_succeeded() {
        let root = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let mark = StepMark::fresh();
        let result = shell(root.path(), "sleep 20 & echo $!", 30, &mark);
        assert!(result.ok, "{}", result.summary);
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid: u32 = result.stdout_tail.trim().parse().unwrap();
        assert!(dead(pid), "the background sleep {pid} is still running");
    }

    /// Whether `pid` is gone (or a zombie nobody reaped yet).
    fn dead(pid: u32) -> bool {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = state.rsplit_once(')').map(|(_, rest)| rest.trim_start());
        state.is_none_or(|s| s.starts_with('Z') || s.starts_with('X'))
    }

    /// Issue 23 item 0: a process that drops the step's mark and leaves
    /// its session is killed when the step ends all the same — the
    /// kernel, not the environment, says what is the step's.
    #[test]
    fn a_process_escaping_the_mark_and_the_session_dies_with_the_step() {
        let root = tempfile::tempdir().unwrap();
        let mark = StepMark::fresh();
        let line = "env -u VIGIE_STEP setsid -w sh -c 'sleep 100 & echo $!'";
        let result = shell(root.path(), line, 30, &mark);
        assert!(result.ok, "{} {}", result.summary, result.stderr_tail);
        let pid: u32 = result.stdout_tail.trim().parse().unwrap();
        assert!(dead(pid), "the escaped sleep {pid} is still running");
    }

    /// The same where no cgroup may be made: the process is a subreaper
    /// (in a process of its own, as a plug is: the mode is per process).
    #[test]
    fn a_process_escaping_the_mark_dies_with_the_step_under_a_subreaper() {
        passes_under_a_subreaper(
            "local::run::tests::a_process_escaping_the_mark_and_the_session_dies_with_the_step",
        );
    }

    /// A service the step hands over (its pid in `VIGIE_SERVICE_PIDS`
    /// before it starts anything) outlives the step, while an escape in
    /// the same step without the handover is still killed.
    #[test]
    fn a_handed_over_service_outlives_the_step_and_an_escape_does_not() {
        let root = tempfile::tempdir().unwrap();
        let mark = StepMark::fresh();
        let line = r#"env -u VIGIE_STEP setsid -f sh -c 'echo $$ >>"$VIGIE_SERVICE_PIDS" && echo $$ >"$0.tmp" && mv "$0.tmp" "$0" && exec sleep 100' "$PWD/kept" </dev/null >/dev/null 2>&1
env -u VIGIE_STEP setsid -w sh -c 'sleep 100 >/dev/null 2>&1 & echo $!'
until [ -s kept ]; do sleep 0.01; done; cat kept"#;
        let result = shell(root.path(), line, 60, &mark);
        assert!(result.ok, "{} {}", result.summary, result.stderr_tail);
        let pids: Vec<u32> = result
            .stdout_tail
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        let [escaped, kept] = pids[..] else {
            panic!("{}", result.stdout_tail)
        };
        let kept_alive = !dead(kept);
        let _ = nix::sys::signal::kill(Pid::from_raw(kept as i32), Signal::SIGKILL);
        assert!(
            dead(escaped),
            "the escaped sleep {escaped} is still running"
        );
        assert!(kept_alive, "the handed over sleep {kept} was killed");
        if std::env::var_os(super::super::reap::CONTAIN_ENV).is_some() {
            // A subreaper's: the service, now our child, exited (waited
            // for without reaping); the next command's end reaps it.
            use nix::sys::wait::{waitid, Id, WaitPidFlag};
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            waitid(Id::Pid(Pid::from_raw(kept as i32)), flags).unwrap();
            let next = shell(root.path(), "true", 60, &mark);
            assert!(next.ok, "{}", next.summary);
            let left = std::path::Path::new(&format!("/proc/{kept}")).exists();
            assert!(!left, "the exited service {kept} was not reaped");
        }
    }

    /// The same under a subreaper, in a process of its own.
    #[test]
    fn a_handed_over_service_outlives_the_step_under_a_subreaper() {
        passes_under_a_subreaper(
            "local::run::tests::a_handed_over_service_outlives_the_step_and_an_escape_does_not",
        );
    }

    #[test]
    fn an_empty_argv_is_a_failure() {
        let root = tempfile::tempdir().unwrap();
        let result = run(&Invocation {
            command: &Command::Argv(vec![]),
            env: &[],
            cwd: root.path(),
            pwd: root.path(),
            root: root.path(),
            timeout: Duration::from_secs(1),
            mark: &StepMark::fresh(),
            output: None,
        });
        assert!(!result.ok);
        assert_eq!(result.summary, "empty command");
    }

    #[test]
    fn a_killing_signal_is_reported() {
        let root = tempfile::tempdir().unwrap();
        let result = shell(root.path(), "kill -TERM $$", 30, &StepMark::fresh());
        assert!(!result.ok);
        assert_eq!(result.exit_code, None);
        assert_eq!(result.summary, "killed by signal SIGTERM");
    }
}
