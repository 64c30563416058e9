//! A tower started by the launcher in a temp dir for a benchmark, and the
//! guard that stops it however the benchmark ends: on an error, a panic or
//! a normal end, the launcher is asked to stop, then its whole process
//! group is killed, then the temp dir is removed. Also: a process's memory
//! and CPU, read from /proc.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::escalator::free_port;
use anyhow::Context;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// Resident memory of a process, in KiB.
pub(super) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// User + system CPU time of a process, in clock ticks (1/100 s).
pub(super) fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit(')').next()?.to_owned();
            let f: Vec<&str> = rest.split_whitespace().collect();
            // After the command name: state is field 0; utime 11, stime 12.
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

/// Time a process's threads spent on a CPU and waiting for one
/// (runnable, not running), in ms, from the scheduler's own count
/// (`/proc/PID/task/*/schedstat`): on a shared machine, the wait says how
/// much of a phase a process was held back by the others.
pub(super) fn sched_ms(pid: u32) -> [u64; 2] {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return [0, 0];
    };
    tasks
        .filter_map(Result::ok)
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .map(|s| {
            let mut f = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
            [
                f.next().unwrap_or(0) / 1_000_000,
                f.next().unwrap_or(0) / 1_000_000,
            ]
        })
        .fold([0, 0], |a, b| [a[0] + b[0], a[1] + b[1]])
}

/// What the tower's logs said that a benchmark counts.
#[derive(Default)]
pub(super) struct Heard {
    /// `handshake_refused` events (the ZAP check said no).
    pub refused: AtomicU64,
    /// `knocks_dropped` events (the front door's knock budget was spent).
    pub knocks_dropped: AtomicU64,
    /// The majordomo's `agents_max` from its `fd_limit` event.
    pub agents_max: AtomicU64,
    /// `agent_connected` events: an agent's first message through this
    /// majordomo (again after a restart).
    pub connected: AtomicU64,
    /// Every event the tower logged since it was ready, by name: what a
    /// run that fails said on its way (relays deferred, hosts offline...).
    pub events: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl Heard {
    /// The events counted so far, most frequent first.
    pub fn events_said(&self) -> String {
        let Ok(events) = self.events.lock() else {
            return String::new();
        };
        let mut v: Vec<(&String, &u64)> = events.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1));
        v.iter()
            .map(|(n, c)| format!("{n} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The event name of one log line, without parsing the whole line.
fn event_name(line: &str) -> Option<&str> {
    let rest = &line[line.find("\"event\":\"")? + 9..];
    rest.get(..rest.find('"')?)
}

/// A tower for a benchmark. Dropping it stops it.
pub(super) struct BenchTower {
    pub dir: tempfile::TempDir,
    launcher: Option<Child>,
    pub pids: HashMap<String, u32>,
    pub majordomo: String,
    pub heard: Arc<Heard>,
}

impl BenchTower {
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vigie-bench-agents-")
            .tempdir()?;
        let ep = |n: &str| format!("ipc://{}/{n}.sock", dir.path().display());
        let majordomo = format!("tcp://127.0.0.1:{}", free_port()?);
        let setup = format!(
            "name: bench\ndata_dir: data\nendpoints:\n  escalator: {}\n  api: {}\n  events: {}\n  orders: {}\n  lifecycle: {}\n  majordomo: {majordomo}\n  metrics: http://127.0.0.1:0\n",
            ep("escalator"),
            ep("api"),
            ep("events"),
            ep("orders"),
            ep("lifecycle")
        );
        std::fs::write(dir.path().join("tower.yml"), setup)?;
        let mut tower = Self {
            dir,
            launcher: None,
            pids: HashMap::new(),
            majordomo,
            heard: Arc::default(),
        };
        tower.launch()?;
        Ok(tower)
    }

    /// Starts the launcher on the setup in the temp dir and waits until it
    /// says the tower is ready. The guard holds the launcher before its
    /// first line is read: a tower that fails to start is stopped too.
    fn launch(&mut self) -> anyhow::Result<()> {
        let file = self.dir.path().join("tower.yml");
        let launcher = Command::new(std::env::current_exe()?)
            .args(["--log-json", "start", "--setup"])
            .arg(&file)
            // Dies with the benchmark, however it ends (its output piped
            // into `head`, a Ctrl-C, a SIGKILL): no tower left behind.
            .env(
                vigie_launcher::PARENT_PID_ENV,
                std::process::id().to_string(),
            )
            // Its own group: the guard kills the launcher and every
            // daemon with one signal if asking them to stop fails.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let launcher = self.launcher.insert(launcher);
        let stderr = launcher.stderr.take().context("stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        self.pids.clear();
        for line in lines.by_ref() {
            let line = line?;
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["event"] == "child_started" {
                if let (Some(n), Some(p)) = (v["name"].as_str(), v["pid"].as_u64()) {
                    self.pids.insert(n.to_owned(), u32::try_from(p)?);
                }
            }
            hear(&self.heard, &v);
            if v["event"] == "tower_ready" {
                break;
            }
            anyhow::ensure!(
                v["event"] != "start_failed",
                "the tower did not start: {line}"
            );
        }
        // Keep reading the launcher's output so it never blocks on a full
        // pipe, and count what the benchmark reports.
        let heard = self.heard.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                if let (Some(name), Ok(mut events)) = (event_name(&line), heard.events.lock()) {
                    *events.entry(name.to_owned()).or_default() += 1;
                }
                if line.contains("handshake_refused")
                    || line.contains("knocks_dropped")
                    || line.contains("fd_limit")
                    || line.contains("agent_connected")
                {
                    hear(&heard, &serde_json::from_str(&line).unwrap_or_default());
                }
            }
        });
        Ok(())
    }

    pub fn ep(&self, n: &str) -> String {
        format!("ipc://{}/{n}.sock", self.dir.path().display())
    }

    /// Counts `agent_connected` from zero again (before a restart).
    pub fn connected_reset(&self) {
        self.heard.connected.store(0, Ordering::Relaxed);
    }

    pub fn launcher_pid(&self) -> u32 {
        self.launcher.as_ref().map_or(0, Child::id)
    }

    /// Stops the whole tower and starts it again on the same data (the
    /// same keys, the same port): what a tower upgrade does to its fleet.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.halt();
        self.launch()
    }

    pub fn stop(mut self) -> anyhow::Result<()> {
        self.halt();
        Ok(())
    }

    /// SIGTERM to the launcher (it stops its daemons in order), then, after
    /// a bounded wait, SIGKILL to its whole group.
    fn halt(&mut self) {
        let Some(mut launcher) = self.launcher.take() else {
            return;
        };
        let Ok(pid) = i32::try_from(launcher.id()) else {
            return;
        };
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = launcher.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        let _ = launcher.wait();
    }
}

impl Drop for BenchTower {
    fn drop(&mut self) {
        self.halt();
    }
}

fn hear(heard: &Heard, v: &serde_json::Value) {
    let event = v["event"]
        .as_str()
        .or_else(|| v["fields"]["event"].as_str());
    match event {
        Some("handshake_refused") => {
            heard.refused.fetch_add(1, Ordering::Relaxed);
        }
        Some("agent_connected") => {
            heard.connected.fetch_add(1, Ordering::Relaxed);
        }
        Some("knocks_dropped") => {
            heard.knocks_dropped.fetch_add(1, Ordering::Relaxed);
        }
        Some("fd_limit") => {
            let f = if v["agents_max"].is_null() {
                &v["fields"]
            } else {
                v
            };
            if let Some(n) = f["agents_max"].as_u64() {
                heard.agents_max.store(n, Ordering::Relaxed);
            }
        }
        _ => {}
    }
}
