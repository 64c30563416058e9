//! Every process a step started, found again and killed, wherever it went.
//!
//! When a command ends — exited or timed out — what it left behind is
//! killed by what the kernel tracks, not by scanning the machine
//! (`Containment`, chosen once per process): where this process may make
//! cgroups (cgroup2 writable here, `cgroup.kill`), each run of a command
//! is in a cgroup of its own from its first instruction, killed whole
//! (`cgroup`); otherwise this process is a child subreaper, so every
//! orphaned descendant — double-forked, `setsid` — comes back to it, and
//! its own descendants started since the command are killed (one step at
//! a time per process, as in a plug). Only where neither is possible are
//! the machine's processes scanned for the step's mark. What a step hands
//! over as a service (`keep`) is left out of the kill.
//!
//! The mark (`VIGIE_STEP=…` in the environment, inherited by every
//! descendant) is kept for when this process is gone: it is recorded in
//! the step's stash before a command carrying it starts, so after a crash
//! of the plug the undo (which recovery runs) kills what the interrupted
//! step left running — its cgroup, and whatever carries the mark — before
//! anything else happens on the host; the `janitor` does the same at the
//! plug's death. A mark starts with the pid of the process that made it.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag};
use nix::unistd::Pid;

use super::cgroup::{self, StepCgroup};
use super::keep::{self, Handover, SERVICE_ENV};
use super::procfs::{stat, Stat, STEP_MARK_ENV};
use super::stash::{read_record, write_record_unsynced};
use crate::DriverError;
use vigie_wire::change::Command;

/// Forces a way to contain steps (`subreaper`, `marks`) instead of the
/// best this host allows: for tests of the fallbacks.
pub const CONTAIN_ENV: &str = "VIGIE_STEP_CONTAIN";

/// The shell that moves itself into the step's cgroup (`$0` is its
/// `cgroup.procs`), then becomes the argv command: nothing the command
/// starts is ever outside it.
const JOIN: &str = r#"echo 0 >"$0" || exit 125; exec "$@""#;

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

    /// Kills what a run marked so left, whoever started it (a plug that
    /// crashed): its cgroup if it has one, then every process carrying the
    /// mark. A scan of the machine, for recovery and undo only.
    pub fn kill_all(&self) -> usize {
        if let Containment::Cgroup(parent) = containment() {
            cgroup::kill_dir(&StepCgroup::path(parent, &self.0), KILL_BOUND);
        }
        self.kill_carriers()
    }

    /// Kills every process carrying this mark and returns once none is
    /// left alive (or after a bound, reporting the survivors). A process
    /// that forks meanwhile is caught by the next scan: its child carries
    /// the mark too.
    fn kill_carriers(&self) -> usize {
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

/// How this process keeps a step's processes together.
#[derive(Debug)]
enum Containment {
    /// Step cgroups are made under this cgroup2 directory (ours).
    Cgroup(PathBuf),
    /// This process is a child subreaper.
    Subreaper,
    /// Neither: the machine is scanned for the mark.
    Marks,
}

/// Decided once, at the first command.
fn containment() -> &'static Containment {
    static CHOSEN: OnceLock<Containment> = OnceLock::new();
    CHOSEN.get_or_init(|| {
        let asked = std::env::var(CONTAIN_ENV).unwrap_or_default();
        let chosen = match asked.as_str() {
            "marks" => Containment::Marks,
            "subreaper" => subreaper(),
            _ => cgroup::detect().map_or_else(subreaper, Containment::Cgroup),
        };
        tracing::info!(event = "steps_contained", how = ?chosen);
        chosen
    })
}

/// Where this process makes step cgroups, if it does.
pub(crate) fn cgroup_parent() -> Option<&'static Path> {
    match containment() {
        Containment::Cgroup(parent) => Some(parent),
        _ => None,
    }
}

fn subreaper() -> Containment {
    // Before: the janitor must not be one of the children we reap.
    super::janitor::ensure_started(None);
    match nix::sys::prctl::set_child_subreaper(true) {
        Ok(()) => Containment::Subreaper,
        Err(e) => {
            tracing::warn!(event = "subreaper_failed", error = %e);
            Containment::Marks
        }
    }
}

/// One run of a step's command, contained: made before it starts,
/// `end` kills whatever of it is left.
pub(crate) struct Contained<'a> {
    mark: &'a StepMark,
    cgroup: Option<StepCgroup>,
    /// When the command started (clock ticks since boot): what starts
    /// from then on is the step's.
    since: Option<u64>,
    /// Where the command hands services over (see `keep`).
    handover: Option<Handover>,
}

impl<'a> Contained<'a> {
    pub fn new(mark: &'a StepMark) -> Self {
        let cgroup = match containment() {
            Containment::Cgroup(parent) => StepCgroup::create(parent, mark.value())
                .map_err(|e| tracing::warn!(event = "cgroup_failed", error = %e))
                .ok(),
            _ => None,
        };
        let handover = match (containment(), &cgroup) {
            (Containment::Cgroup(parent), Some(_)) => Handover::cgroup(parent),
            (Containment::Subreaper, _) => Handover::pids(mark.value()),
            _ => None,
        };
        Contained {
            mark,
            cgroup,
            since: None,
            handover,
        }
    }

    /// The process for `command`, in the run's cgroup from its first
    /// instruction when it has one: a shell line is prefixed with the
    /// join (one shell, `$0` and its arguments unchanged), an argv goes
    /// through a joining shell that `exec`s it. `command` is not an empty
    /// argv (refused before).
    pub fn command(&self, command: &Command) -> process::Command {
        let mut cmd = process::Command::new("/bin/sh");
        match (command, &self.cgroup) {
            (Command::Shell(line), Some(cg)) => {
                let procs = cg.procs().to_string_lossy().replace('\'', r"'\''");
                cmd.arg("-c")
                    .arg(format!("echo 0 >'{procs}' || exit 125; {line}"));
            }
            (Command::Shell(line), None) => {
                cmd.arg("-c").arg(line);
            }
            (Command::Argv(argv), Some(cg)) => {
                cmd.arg("-c").arg(JOIN).arg(cg.procs()).args(argv);
            }
            (Command::Argv(argv), None) => {
                let (program, args) = argv
                    .split_first()
                    .map_or(("", &[][..]), |(p, a)| (p.as_str(), a));
                cmd = process::Command::new(program);
                cmd.args(args);
            }
        }
        match &self.handover {
            Some(h) => cmd.env(SERVICE_ENV, h.path()),
            None => cmd.env_remove(SERVICE_ENV),
        };
        cmd
    }

    /// The command started as `pid`: what starts from now on is the step's.
    pub fn started(&mut self, pid: u32) {
        self.since = i32::try_from(pid).ok().and_then(stat).map(|s| s.start);
    }

    /// Kills everything the run left (the command itself already waited
    /// for) and returns once none is left, or after a bound.
    pub fn end(self) {
        if let Some(handover) = self.handover {
            handover.finish();
        }
        match (&self.cgroup, containment()) {
            (Some(cg), _) => {
                cg.kill_and_remove(KILL_BOUND);
            }
            (None, Containment::Subreaper) => match self.since {
                Some(since) => {
                    keep::reap_exited();
                    kill_descendants(self.mark, since);
                }
                None => {
                    self.mark.kill_carriers();
                }
            },
            (None, _) => {
                self.mark.kill_carriers();
            }
        }
    }
}

/// This process's descendants (it is their subreaper, so orphans are
/// among them) but kept services and theirs: from each thread's
/// `children` where the kernel has them, else from one pass over every
/// process's parent.
fn descendants() -> Vec<i32> {
    let me = i32::try_from(process::id()).unwrap_or(0);
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    let own = fs::read_dir(format!("/proc/{me}/task"))
        .into_iter()
        .flatten();
    let mut listed = false;
    for task in own.flatten() {
        if let Ok(text) = fs::read_to_string(task.path().join("children")) {
            listed = true;
            let kids = text
                .split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok());
            children.entry(me).or_default().extend(kids);
        }
    }
    if !listed {
        let procs = fs::read_dir("/proc").into_iter().flatten().flatten();
        for pid in procs.filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()) {
            if let Some(s) = stat(pid) {
                children.entry(s.ppid).or_default().push(pid);
            }
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![me];
    while let Some(pid) = todo.pop() {
        for &kid in children.get(&pid).into_iter().flatten() {
            if stat(kid).is_some_and(|s| keep::is_kept(kid, s.start)) {
                continue;
            }
            out.push(kid);
            todo.push(kid);
        }
    }
    out
}

/// Whether descendant `pid` is the step's: started since its command, and
/// not carrying another step's mark (a process whose mark was removed is
/// the step's: nothing else of this process starts during a step).
fn is_steps(pid: i32, s: &Stat, needle: &[u8], since: u64) -> bool {
    if s.start < since {
        return false;
    }
    let environ = fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    let prefix = format!("{STEP_MARK_ENV}=");
    let mut marks = environ
        .split(|b| *b == 0)
        .filter(|v| v.starts_with(prefix.as_bytes()));
    marks.all(|v| v == needle)
}

/// Whether this process has no child at all, dead or alive (none is
/// reaped by asking).
fn childless() -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    matches!(waitid(Id::All, flags), Err(nix::errno::Errno::ECHILD))
}

/// Kills (and reaps: they are ours) the step's descendants until none is
/// left; their orphans come back to this process as their parents die.
fn kill_descendants(mark: &StepMark, since: u64) {
    let needle = format!("{STEP_MARK_ENV}={}", mark.0);
    let me = i32::try_from(process::id()).unwrap_or(0);
    let deadline = Instant::now() + KILL_BOUND;
    let mut killed = 0;
    // No child at all, dead or alive: the step left nothing (the common
    // case, no look at /proc).
    while !childless() {
        let theirs: Vec<(i32, Stat)> = descendants()
            .into_iter()
            .filter_map(|pid| stat(pid).map(|s| (pid, s)))
            .filter(|(pid, s)| is_steps(*pid, s, needle.as_bytes(), since))
            .collect();
        if theirs.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            let pids: Vec<i32> = theirs.iter().map(|(p, _)| *p).collect();
            tracing::warn!(event = "step_survivors", mark = %mark.0, pids = ?pids);
            break;
        }
        for (pid, s) in &theirs {
            if s.state != 'Z' && kill(Pid::from_raw(*pid), Signal::SIGKILL).is_ok() {
                killed += 1;
            }
        }
        // Killed children die at once: waiting for them is the pause
        // before the next look (their own children come back meanwhile).
        let mine: Vec<i32> = theirs
            .iter()
            .filter(|(_, s)| s.ppid == me)
            .map(|(p, _)| *p)
            .collect();
        for pid in &mine {
            let _ = waitpid(Pid::from_raw(*pid), None);
        }
        if mine.is_empty() {
            // Only grandchildren left, dying: their death has no event here.
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    if killed > 0 {
        tracing::info!(event = "step_processes_killed", mark = %mark.0, killed);
    }
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
        let killed = mark.kill_carriers();
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
