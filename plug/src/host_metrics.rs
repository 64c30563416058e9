//! Samples the host's resources for `PlugEvent::HostMetrics`: CPU times,
//! load, memory and uptime from `/proc`, the root's filesystem from
//! `statvfs`, and the deployer's instances under
//! `ROOT/srv/services/auto-*/<instance>/replica-<n>/` (running when the
//! supervisor's pid file names a live process). The root is walked from
//! its handle, never through a symlink (`vigie_drivers::RootDir`): what
//! runs there cannot point the plug at a file outside it. Parsing is
//! separate from reading, so it is tested on fixed text.

use std::fs;
use std::io::Read;
use std::path::Path;

use vigie_drivers::RootDir;
use vigie_wire::observe::{HostSample, ServiceState, MAX_SERVICES};

/// One replica directory of a deployed instance.
pub struct Replica {
    pub service: String,
    pub instance: String,
    pub replica: String,
    /// Its directory, opened from the root without following symlinks.
    pub dir: RootDir,
    /// Its path under the root, `srv/services/…/replica-N` (a name for
    /// bookkeeping, never looked up).
    pub path: String,
}

/// The deployer's replicas on the host (`auto-bin` and `auto-proxy` are
/// its tools, not services).
pub fn replicas(root: &Path) -> Vec<Replica> {
    let mut out = Vec::new();
    let Ok(services) = RootDir::open(root).and_then(|r| r.dir("srv/services")) else {
        return out;
    };
    let subdirs = |d: &RootDir| d.subdirs().unwrap_or_default();
    for service in subdirs(&services) {
        if !service.starts_with("auto-") || service == "auto-bin" || service == "auto-proxy" {
            continue;
        }
        let Ok(sdir) = services.dir(&service) else {
            continue;
        };
        for instance in subdirs(&sdir) {
            let Ok(idir) = sdir.dir(&instance) else {
                continue;
            };
            for name in subdirs(&idir) {
                let Some(r) = name.strip_prefix("replica-") else {
                    continue;
                };
                let Ok(dir) = idir.dir(&name) else { continue };
                out.push(Replica {
                    path: format!("srv/services/{service}/{instance}/{name}"),
                    service: service.clone(),
                    instance: instance.clone(),
                    replica: r.to_owned(),
                    dir,
                });
            }
        }
    }
    out
}

/// A process is alive and not a zombie.
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            .is_some_and(|state| state != "Z")
    })
}

fn running(dir: &RootDir) -> bool {
    let mut text = String::new();
    dir.file("supervisor.pid")
        .and_then(|f| f.take(64).read_to_string(&mut text))
        .ok()
        .and_then(|_| text.trim().parse::<u32>().ok())
        .is_some_and(alive)
}

/// `/proc/stat`'s first line: busy and idle milliseconds (ticks of 1/100 s).
fn parse_cpu(stat: &str) -> (u64, u64) {
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal (guest is in user).
    let busy = at(0) + at(1) + at(2) + at(5) + at(6) + at(7);
    let idle = at(3) + at(4);
    (busy * 10, idle * 10)
}

fn parse_cpus(stat: &str) -> u32 {
    let n = stat
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn parse_load(loadavg: &str) -> [u32; 3] {
    let mut out = [0; 3];
    for (slot, f) in out.iter_mut().zip(loadavg.split_whitespace()) {
        *slot = f.parse::<f64>().map_or(0, |l| {
            (l * 100.0).round().clamp(0.0, u32::MAX as f64) as u32
        });
    }
    out
}

/// `MemTotal` and `MemAvailable`, in bytes.
fn parse_memory(meminfo: &str) -> (u64, u64) {
    let field = |name: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}

fn parse_uptime(uptime: &str) -> u64 {
    uptime
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<f64>().ok())
        .map_or(0, |s| (s * 1000.0) as u64)
}

/// Samples the host now. What cannot be read is left at zero.
pub fn sample(host: &str, root: &Path, interval_ms: u64) -> HostSample {
    let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
    let stat = read("/proc/stat");
    let (cpu_busy_ms, cpu_idle_ms) = parse_cpu(&stat);
    let (memory_total_bytes, memory_available_bytes) = parse_memory(&read("/proc/meminfo"));
    let (disk_total_bytes, disk_available_bytes) = rustix::fs::statvfs(root)
        .map(|s| (s.f_blocks * s.f_frsize, s.f_bavail * s.f_frsize))
        .unwrap_or((0, 0));
    let all = replicas(root);
    let omitted = all.len().saturating_sub(MAX_SERVICES);
    let services = all
        .into_iter()
        .take(MAX_SERVICES)
        .map(|r| ServiceState {
            running: running(&r.dir),
            name: r.service,
            instance: r.instance,
            replica: r.replica,
        })
        .collect();
    HostSample {
        host: host.to_owned(),
        at_ms: crate::clock::now_ms(),
        interval_ms,
        cpus: parse_cpus(&stat),
        cpu_busy_ms,
        cpu_idle_ms,
        load_centi: parse_load(&read("/proc/loadavg")),
        memory_total_bytes,
        memory_available_bytes,
        disk_total_bytes,
        disk_available_bytes,
        uptime_ms: parse_uptime(&read("/proc/uptime")),
        services,
        services_omitted: u32::try_from(omitted).unwrap_or(u32::MAX),
        // The health watch's counts: the observer adds them.
        replica_restarts: 0,
        replicas_given_up: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_are_read_into_base_units() {
        let stat = "cpu  100 5 20 1000 30 1 2 3 0 0\ncpu0 50 2 10 500 15 0 1 1 0 0\ncpu1 50 3 10 500 15 1 1 2 0 0\nintr 1\n";
        assert_eq!(
            parse_cpu(stat),
            ((100 + 5 + 20 + 1 + 2 + 3) * 10, 1030 * 10)
        );
        assert_eq!(parse_cpus(stat), 2);
        assert_eq!(parse_load("0.52 1.00 12.25 2/300 999\n"), [52, 100, 1225]);
        let mem = "MemTotal:       2048 kB\nMemFree:  10 kB\nMemAvailable:   1024 kB\n";
        assert_eq!(parse_memory(mem), (2048 * 1024, 1024 * 1024));
        assert_eq!(parse_uptime("12.34 40.00\n"), 12_340);
        assert_eq!(parse_load("garbage"), [0, 0, 0]);
    }

    #[test]
    fn the_deployer_s_replicas_are_found_and_their_state_read() {
        let root = tempfile::tempdir().unwrap();
        let rep = root
            .path()
            .join("srv/services/auto-shop-prod-web/3/replica-1");
        fs::create_dir_all(&rep).unwrap();
        fs::create_dir_all(root.path().join("srv/services/auto-bin")).unwrap();
        fs::create_dir_all(
            root.path()
                .join("srv/services/auto-shop-prod-web/3/replica-2"),
        )
        .unwrap();
        fs::write(rep.join("supervisor.pid"), std::process::id().to_string()).unwrap();
        let s = sample("h", root.path(), 10_000);
        let got: Vec<(&str, &str, &str, bool)> = s
            .services
            .iter()
            .map(|s| (&*s.name, &*s.instance, &*s.replica, s.running))
            .collect();
        assert_eq!(
            got,
            [
                ("auto-shop-prod-web", "3", "1", true),
                ("auto-shop-prod-web", "3", "2", false)
            ]
        );
        assert!(s.disk_total_bytes > 0 && s.memory_total_bytes > 0);
    }
}
