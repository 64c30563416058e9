//! A cgroup per run of a step's command, where this process may make
//! them: the kernel keeps every descendant in it — double-forked,
//! `setsid`, its environment cleared — and `cgroup.kill` ends them all at
//! once, with no scan of the machine. Usable when the cgroup2 hierarchy
//! holding this process lets it make a child cgroup that has
//! `cgroup.kill` (Linux 5.14): a plug running as root, or in a cgroup
//! delegated to it (systemd's `Delegate=yes`). Elsewhere (no cgroup2, a
//! read-only or foreign one, an older kernel) `reap` falls back to a
//! subreaper.

use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// Each step cgroup's name starts with this, then the step's mark (which
/// starts with the pid of the process that made it, for the janitor).
pub const PREFIX: &str = "vigie-step-";

/// The longest wait on `cgroup.events` before reading it again.
const RELOOK: Duration = Duration::from_millis(50);

/// The cgroup2 directory this process is in, if it can make step cgroups
/// there: a probe child is made, must have `cgroup.kill`, and is removed.
pub fn detect() -> Option<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").ok()?;
    // Field 5 is the mount point; the file system type follows " - ".
    let mount = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        if right.split(' ').next() != Some("cgroup2") {
            return None;
        }
        left.split(' ').nth(4)
    })?;
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let rel = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let parent = Path::new(mount).join(rel.trim_start_matches('/'));
    let probe = parent.join(format!("{PREFIX}probe-{}", std::process::id()));
    fs::create_dir(&probe).ok()?;
    let usable = probe.join("cgroup.kill").exists();
    let _ = fs::remove_dir(&probe);
    usable.then_some(parent)
}

/// One step command's cgroup: made before the command starts, killed and
/// removed when it ends.
#[derive(Debug)]
pub struct StepCgroup {
    dir: PathBuf,
}

impl StepCgroup {
    /// The cgroup for the run marked `mark`, under `parent`.
    pub fn path(parent: &Path, mark: &str) -> PathBuf {
        parent.join(format!("{PREFIX}{mark}"))
    }

    pub fn create(parent: &Path, mark: &str) -> io::Result<StepCgroup> {
        let dir = Self::path(parent, mark);
        fs::create_dir(&dir)?;
        Ok(StepCgroup { dir })
    }

    /// The file a process writes `0` to, to move itself in.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Kills every process in it, waits until the kernel says it is empty
    /// (or `bound` passed: survivors are reported) and removes it. Returns
    /// whether it was emptied.
    pub fn kill_and_remove(&self, bound: Duration) -> bool {
        kill_dir(&self.dir, bound)
    }
}

/// `cgroup.kill`, then waits for `populated 0` in `cgroup.events` (the
/// kernel wakes a poller when it changes), then `rmdir`. A cgroup that
/// does not exist is empty.
pub fn kill_dir(dir: &Path, bound: Duration) -> bool {
    match fs::write(dir.join("cgroup.kill"), b"1") {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return true,
        Err(e) => tracing::warn!(event = "cgroup_unkillable", dir = %dir.display(), error = %e),
    }
    let emptied = wait_empty(dir, Instant::now() + bound);
    if !emptied {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        tracing::warn!(event = "step_survivors", dir = %dir.display(), pids = %procs.split_whitespace().collect::<Vec<_>>().join(" "));
    }
    if let Err(e) = fs::remove_dir(dir) {
        tracing::warn!(event = "cgroup_kept", dir = %dir.display(), error = %e);
    }
    emptied
}

fn wait_empty(dir: &Path, deadline: Instant) -> bool {
    let Ok(events) = fs::File::open(dir.join("cgroup.events")) else {
        return false;
    };
    let mut buf = [0u8; 256];
    loop {
        // Unreadable: removed meanwhile (by whoever else killed it), which
        // only an empty cgroup can be.
        let Ok(n) = events.read_at(&mut buf, 0) else {
            return true;
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        if text.lines().any(|l| l.trim() == "populated 0") {
            return true;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        // A removal wakes no poller: look again at least this often.
        let left = left.min(RELOOK);
        let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(events.as_fd(), PollFlags::POLLPRI)];
        if let Err(e) = poll(&mut fds, timeout) {
            if e != nix::errno::Errno::EINTR {
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where this machine lets us make cgroups, a process that left its
    /// session in one is killed with the cgroup, which is then removed.
    #[test]
    fn a_cgroup_kill_ends_a_process_that_left_its_session() {
        let Some(parent) = detect() else {
            eprintln!("no usable cgroup2 here: nothing to check");
            return;
        };
        let mark = super::super::reap::StepMark::fresh();
        let cg = StepCgroup::create(&parent, mark.value()).unwrap();
        let procs = cg.procs();
        let mut child = std::process::Command::new("/bin/sh")
            .args(["-c", "echo 0 >\"$0\" && echo in && exec setsid sleep 120"])
            .arg(&procs)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        let out = child.stdout.take().unwrap();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
        assert_eq!(line, "in\n");
        assert!(!fs::read_to_string(&procs).unwrap().trim().is_empty());
        assert!(cg.kill_and_remove(Duration::from_secs(10)));
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        assert!(!StepCgroup::path(&parent, mark.value()).exists());
    }
}
