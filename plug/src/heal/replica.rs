//! The I/O of the health watch on one replica: what the deployer left in
//! its directories (the instance's `health_watch`, the replica's `env`
//! for its address), the HTTP check, and the signals to its supervisor.
//! Everything under the root is read from the root's handle, never
//! through a symlink, and is hostile (the app writes there): a pid file
//! is believed only when that process is the supervisor of this very
//! replica (`/proc/PID/cmdline`).

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use vigie_drivers::RootDir;
use vigie_wire::observe::{HealthWatch, HEALTH_WATCH_FILE};

use crate::host_metrics::Replica;

/// Most bytes read of a file the app may have written.
const SMALL: u64 = 4096;

fn read_small(dir: &RootDir, name: &str) -> Option<String> {
    let mut text = String::new();
    dir.file(name)
        .ok()?
        .take(SMALL)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// A replica of an instance that asked to be watched, with its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    pub watch: HealthWatch,
    pub addr: SocketAddr,
}

/// What the deployer says of `r`: `None` for an instance deployed
/// without a watch (older, or a worker), or unreadable files.
pub fn watched(root: &RootDir, r: &Replica) -> Option<Watched> {
    let instance = root
        .dir(&format!("srv/services/{}/{}", r.service, r.instance))
        .ok()?;
    let watch = HealthWatch::parse(&read_small(&instance, HEALTH_WATCH_FILE)?)?;
    let addr = address(&read_small(&r.dir, "env")?)?;
    Some(Watched { watch, addr })
}

/// `BIND` and `PORT` of a replica's `env` (the deployer writes them
/// single-quoted).
pub fn address(env: &str) -> Option<SocketAddr> {
    let var = |name: &str| {
        env.lines().find_map(|l| {
            l.strip_prefix(name)?
                .strip_prefix("='")?
                .strip_suffix('\'')
                .map(str::to_owned)
        })
    };
    let bind: Ipv4Addr = var("BIND")?.parse().ok()?;
    let port: u16 = var("PORT")?.parse().ok()?;
    Some(SocketAddr::from((bind, port)))
}

/// One GET of the health path: `Err` says why it is not healthy.
pub fn check(w: &Watched) -> Result<(), String> {
    let url = format!("http://{}{}", w.addr, w.watch.path);
    // Redirects are not followed: a 200 of the replica itself is asked.
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_millis(w.watch.timeout_ms.max(1)))
        .redirects(0)
        .build();
    match agent.get(&url).call() {
        Ok(r) if r.status() == 200 => Ok(()),
        Ok(r) => Err(format!("GET {url} answered {}", r.status())),
        Err(ureq::Error::Status(code, _)) => Err(format!("GET {url} answered {code}")),
        Err(ureq::Error::Transport(e)) => Err(format!("GET {url}: {e}")),
    }
}

/// The pid of the replica's supervisor, if it runs and really is the
/// supervisor of this replica (`supervise run INSTANCE_DIR N`).
pub fn supervisor(r: &Replica) -> Option<Pid> {
    let pid: i32 = read_small(&r.dir, "supervisor.pid")?.trim().parse().ok()?;
    if pid <= 1 {
        return None;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let instance = format!("srv/services/{}/{}", r.service, r.instance);
    let is_ours = args.windows(4).any(|w| {
        let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
        text(w[0]).is_some_and(|s| s.ends_with("/auto-bin/supervise"))
            && w[1] == b"run"
            && text(w[2]).is_some_and(|d| Path::new(&d).ends_with(&instance))
            && w[3] == r.replica.as_bytes()
    });
    is_ours.then(|| Pid::from_raw(pid))
}

/// Asks the supervisor to restart its app: SIGUSR1 (it sends the app
/// SIGTERM, waits the instance's grace period, SIGKILLs what is left,
/// and starts it again).
pub fn restart(pid: Pid) -> Result<(), String> {
    kill(pid, Signal::SIGUSR1).map_err(|e| format!("SIGUSR1 to {pid}: {e}"))
}

/// Stops the replica for good: SIGTERM to its supervisor (the app gets
/// SIGTERM, the grace period, SIGKILL; the supervisor exits).
pub fn stop(pid: Pid) -> Result<(), String> {
    kill(pid, Signal::SIGTERM).map_err(|e| format!("SIGTERM to {pid}: {e}"))
}

/// The instance's grace period (`stop_grace`, seconds), at most two
/// minutes: how long its supervisor may take to stop.
pub fn grace(root: &RootDir, r: &Replica) -> Duration {
    let secs = root
        .dir(&format!("srv/services/{}/{}", r.service, r.instance))
        .ok()
        .and_then(|d| read_small(&d, "stop_grace"))
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(10.0);
    Duration::from_secs_f64(secs.min(120.0))
}

/// Waits until `pid` is gone (or a zombie), at most `bound`.
pub fn wait_gone(pid: Pid, bound: Duration) -> bool {
    let until = std::time::Instant::now() + bound;
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok();
        let gone = state.is_none_or(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                .is_none_or(|st| st == "Z")
        });
        if gone {
            return true;
        }
        if std::time::Instant::now() >= until {
            return false;
        }
        // A foreign process: no pidfd of ours to wait on portably here.
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica_in(root: &Path) -> Replica {
        let path = "srv/services/auto-a-b-web/1/replica-1";
        std::fs::create_dir_all(root.join(path)).unwrap();
        Replica {
            service: "auto-a-b-web".into(),
            instance: "1".into(),
            replica: "1".into(),
            dir: RootDir::open(root).unwrap().dir(path).unwrap(),
            path: path.into(),
        }
    }

    #[test]
    fn a_pid_file_is_believed_only_for_the_supervisor_of_that_very_replica() {
        let root = tempfile::tempdir().unwrap();
        let r = replica_in(root.path());
        let bin = root.path().join("srv/services/auto-bin");
        std::fs::create_dir_all(&bin).unwrap();
        // Waits on its stdin, as itself (an `exec` would change its
        // command line), and leaves nothing behind when killed.
        std::fs::write(bin.join("supervise"), "read -r line\n").unwrap();
        let instance = root.path().join("srv/services/auto-a-b-web/1");
        let spawn = |dir: &Path, replica: &str| {
            std::process::Command::new("/bin/sh")
                .arg(bin.join("supervise"))
                .args(["run".as_ref(), dir.as_os_str(), replica.as_ref()])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let mut ours = spawn(&instance, "1");
        let mut other_replica = spawn(&instance, "2");
        let pid_file = root.path().join(&r.path).join("supervisor.pid");
        // The app wrote another process's pid (the plug's own, here):
        // nothing is signalled.
        std::fs::write(&pid_file, std::process::id().to_string()).unwrap();
        assert_eq!(supervisor(&r), None);
        // The supervisor of another replica of the same instance: neither.
        std::fs::write(&pid_file, other_replica.id().to_string()).unwrap();
        assert_eq!(supervisor(&r), None);
        // Garbage, pid 1: neither.
        for junk in ["1", "-5", "x", ""] {
            std::fs::write(&pid_file, junk).unwrap();
            assert_eq!(supervisor(&r), None, "{junk:?}");
        }
        // Its own supervisor: yes.
        std::fs::write(&pid_file, ours.id().to_string()).unwrap();
        assert_eq!(supervisor(&r), Some(Pid::from_raw(ours.id() as i32)));
        for child in [&mut ours, &mut other_replica] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    #[test]
    fn the_address_is_read_from_the_deployers_env_only_when_well_formed() {
        let env =
            "# Written by the Vigie deployer.\nBIND='127.0.0.2'\nINSTANCE='1'\nPORT='27100'\n";
        assert_eq!(address(env), Some("127.0.0.2:27100".parse().unwrap()));
        assert_eq!(address("BIND='127.0.0.2'\nPORT='99999'\n"), None);
        assert_eq!(address("BIND='evil.example'\nPORT='80'\n"), None);
        assert_eq!(address("PORT='80'\n"), None);
    }
}
