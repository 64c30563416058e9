//! Services a step hands over: the one sanctioned way for a step's
//! process to outlive the step (a deployed instance's supervisor, the
//! host's proxy). Every command gets `VIGIE_SERVICE_PIDS`, a file to
//! which a process appends its own pid (`echo $$ >>"$VIGIE_SERVICE_PIDS"`)
//! before it starts anything: that process, and what it starts from then
//! on, is kept when the step ends. Anything else the step left — an
//! `env -u VIGIE_STEP setsid` escape included — is still killed.
//!
//! With step cgroups the file is the `cgroup.procs` of a cgroup beside
//! them (`vigie-services`, which neither the end of a step, its undo, nor
//! the janitor ever kills): the write moves the process there, and the
//! kernel keeps its future children there. With a subreaper it is a file
//! of the run's, read when the command ends: the pids in it and their
//! descendants are left alone, and the plug reaps them when they exit
//! (they are its children once their parents are gone). A process whose
//! parent exits is no longer found under a kept pid there: a daemon that
//! forks away (nginx) has its own pid appended too, once known. Where
//! steps are contained by marks only, the variable is not set and a
//! process without the mark is not looked for, as before.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use super::procfs::stat;

/// The environment variable naming the file a process hands itself over in.
pub const SERVICE_ENV: &str = "VIGIE_SERVICE_PIDS";

/// The kept services' cgroup, beside the step cgroups (not named like
/// them: the janitor's and the undo's kills never match it).
const SERVICES: &str = "vigie-services";

/// Where a run's command hands services over.
#[derive(Debug)]
pub(crate) enum Handover {
    /// The services cgroup's `cgroup.procs`.
    Cgroup(PathBuf),
    /// A file of this run's, read when it ends.
    Pids(PathBuf),
}

impl Handover {
    /// The handover into the services cgroup under `parent`, made once.
    pub fn cgroup(parent: &Path) -> Option<Handover> {
        static MADE: OnceLock<Option<PathBuf>> = OnceLock::new();
        let dir = MADE.get_or_init(|| {
            let dir = parent.join(SERVICES);
            match fs::create_dir(&dir) {
                Ok(()) => Some(dir),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Some(dir),
                Err(e) => {
                    tracing::warn!(event = "services_cgroup_failed", error = %e);
                    None
                }
            }
        });
        dir.as_ref()
            .map(|d| Handover::Cgroup(d.join("cgroup.procs")))
    }

    /// A fresh, empty pid file for one run (only this user may write it).
    pub fn pids(mark: &str) -> Option<Handover> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("vigie-services-{mark}-{n}"));
        let made = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match made {
            Ok(_) => Some(Handover::Pids(path)),
            Err(e) => {
                tracing::warn!(event = "services_file_failed", path = %path.display(), error = %e);
                None
            }
        }
    }

    /// The path the command is given in `SERVICE_ENV`.
    pub fn path(&self) -> &Path {
        match self {
            Handover::Cgroup(p) | Handover::Pids(p) => p,
        }
    }

    /// At the run's end: the pids it handed over join the kept ones (a
    /// subreaper's), and its file goes.
    pub fn finish(self) {
        let Handover::Pids(path) = self else {
            return;
        };
        let text = fs::read_to_string(&path).unwrap_or_default();
        let _ = fs::remove_file(&path);
        let mut kept = kept().lock().unwrap_or_else(|e| e.into_inner());
        for pid in text
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            if let Some(s) = stat(pid) {
                tracing::info!(event = "service_kept", pid);
                kept.insert((pid, s.start));
            }
        }
    }
}

/// The services handed over to this process (a subreaper): pid and start
/// time (a pid reused by another process is not kept).
fn kept() -> &'static Mutex<HashSet<(i32, u64)>> {
    static KEPT: OnceLock<Mutex<HashSet<(i32, u64)>>> = OnceLock::new();
    KEPT.get_or_init(Mutex::default)
}

/// Whether `pid`, started at `start`, is a kept service.
pub(crate) fn is_kept(pid: i32, start: u64) -> bool {
    kept()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&(pid, start))
}

/// Reaps the kept services that exited (this process's children once
/// their parents are gone) and forgets those gone: no zombie piles up.
pub(crate) fn reap_exited() {
    let me = i32::try_from(std::process::id()).unwrap_or(0);
    let mut kept = kept().lock().unwrap_or_else(|e| e.into_inner());
    kept.retain(|&(pid, start)| match stat(pid) {
        Some(s) if s.start == start && s.state == 'Z' && s.ppid == me => {
            let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
            false
        }
        Some(s) => s.start == start,
        None => false,
    });
}
