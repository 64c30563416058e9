//! Every process a step started, found again and killed, wherever it went.
//!
//! A step's commands carry a mark in their environment (`VIGIE_STEP=…`),
//! which every descendant inherits: one that backgrounds itself
//! (`(sleep 120 &)`, re-parented to init) or leaves the step's process
//! group and session (`setsid`) still carries it. When a command ends —
//! exited or timed out — every process carrying the step's mark is killed,
//! found by a scan of `/proc/*/environ`. The mark is recorded in the
//! step's stash before a command carrying it starts, so after a crash of
//! the plug, the undo (which recovery runs) kills what the interrupted step
//! left running before anything else happens on the host. A mark starts
//! with the pid of the process that made it, for its `janitor`.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::stash::{read_record, write_record_unsynced};
use crate::DriverError;

/// The environment variable that marks a step's processes.
pub const STEP_MARK_ENV: &str = "VIGIE_STEP";

/// The stash record holding the mark.
const RECORD: &str = "step.mark";

/// How long killing may take before the survivors are reported.
const KILL_BOUND: Duration = Duration::from_secs(10);
/// Between two scans, time for killed processes to finish dying.
const RESCAN_AFTER: Duration = Duration::from_millis(5);

/// The mark of one step's processes: unique on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StepMark(String);

impl StepMark {
    /// A mark not recorded anywhere (a probe that runs and ends in one call).
    pub fn fresh() -> StepMark {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        StepMark(format!("{}-{nanos}-{n}", std::process::id()))
    }

    /// The mark recorded in the stash, if a command of the step ever started.
    pub fn recorded(stash: &Path) -> Result<Option<StepMark>, DriverError> {
        Ok(read_record(stash, RECORD)?
            .filter(|m| !m.is_empty())
            .map(StepMark))
    }

    /// A new mark for the step, recorded in its stash before a command
    /// carrying it starts (not fsynced: a power loss ends the processes). Each run of the step's commands (apply,
    /// then undo, maybe after a restart) gets its own, made by this
    /// process, so this process's janitor knows it (see `janitor`).
    pub fn record_fresh(stash: &Path) -> Result<StepMark, DriverError> {
        let mark = Self::fresh();
        write_record_unsynced(stash, RECORD, &mark.0)?;
        Ok(mark)
    }

    pub fn value(&self) -> &str {
        &self.0
    }

    /// Kills every process carrying this mark and returns once none is
    /// left alive (or after a bound, reporting the survivors). A process
    /// that forks meanwhile is caught by the next scan: its child carries
    /// the mark too.
    pub fn kill_all(&self) -> usize {
        let needle = format!("{STEP_MARK_ENV}={}", self.0);
        let deadline = Instant::now() + KILL_BOUND;
        let mut killed = 0;
        // A process in the middle of an exec shows no environment for an
        // instant (longer when the machine is busy): only two empty scans
        // in a row, a pause apart, mean none is left.
        let mut empty_scans = 0;
        loop {
            let carriers = carriers(needle.as_bytes());
            if carriers.is_empty() {
                empty_scans += 1;
                if empty_scans == 2 {
                    break;
                }
                std::thread::sleep(RESCAN_AFTER);
                continue;
            }
            empty_scans = 0;
            if Instant::now() > deadline {
                tracing::warn!(event = "step_survivors", mark = %self.0, pids = ?carriers);
                break;
            }
            for pid in carriers {
                match kill(Pid::from_raw(pid), Signal::SIGKILL) {
                    Ok(()) => killed += 1,
                    Err(nix::errno::Errno::ESRCH) => {}
                    Err(e) => tracing::warn!(event = "kill_failed", pid, error = %e),
                }
            }
            // Not a wait for an event: SIGKILL has no completion to wait
            // on for a process that is not our child.
            std::thread::sleep(RESCAN_AFTER);
        }
        if killed > 0 {
            tracing::info!(event = "step_processes_killed", mark = %self.0, killed);
        }
        killed
    }
}

/// The live processes whose environment holds `needle` as one entry. A
/// zombie's environment reads empty, so the dead are not counted.
fn carriers(needle: &[u8]) -> Vec<i32> {
    let Ok(proc) = fs::read_dir("/proc") else {
        tracing::warn!(event = "proc_unreadable");
        return vec![];
    };
    let me = std::process::id();
    let mut found = vec![];
    for entry in proc.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        // Unreadable: gone meanwhile, or not ours to read (nor to kill).
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|var| var == needle) {
            found.extend(i32::try_from(pid).ok());
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_mark_is_recorded() {
        let stash = tempfile::tempdir().unwrap();
        assert_eq!(StepMark::recorded(stash.path()).unwrap(), None);
        let first = StepMark::record_fresh(stash.path()).unwrap();
        assert_eq!(
            StepMark::recorded(stash.path()).unwrap(),
            Some(first.clone())
        );
        let second = StepMark::record_fresh(stash.path()).unwrap();
        assert_ne!(second, first);
        assert_eq!(StepMark::recorded(stash.path()).unwrap(), Some(second));
        assert_ne!(StepMark::fresh(), StepMark::fresh());
    }

    #[test]
    fn kills_a_marked_process_that_left_its_session() {
        let mark = StepMark::fresh();
        let mut child = std::process::Command::new("setsid")
            .args(["sleep", "120"])
            .env(STEP_MARK_ENV, mark.value())
            .spawn()
            .unwrap();
        let killed = mark.kill_all();
        let status = wait_timeout::ChildExt::wait_timeout(&mut child, Duration::from_secs(10));
        let status = status.unwrap().unwrap_or_else(|| {
            let _ = child.kill();
            panic!("not killed (kill_all said {killed})")
        });
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9),
            "{status} (kill_all said {killed})"
        );
        assert!(carriers(format!("{STEP_MARK_ENV}={}", mark.value()).as_bytes()).is_empty());
    }
}
