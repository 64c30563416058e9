//! Health that heals (seed 003): once a rollout is over, the host's
//! agent keeps checking every replica whose instance asked for it
//! (`health_watch`, written by the deployer) at the instance's `every`;
//! `restart_after` failures in a row restart that replica through its
//! supervisor (SIGTERM → grace → SIGKILL → start), counted in the host's
//! metrics (`HostSample::replica_restarts`) and written to the service's
//! log (a JSON line) with the event `replica_restarted`. A replica
//! restarted too often (`policy::MAX_RESTARTS` in ten minutes) is stopped
//! and left stopped (`replica_abandoned`), never restarted for ever.
//!
//! It runs in a thread of its own beside the plug (an HTTP check may take
//! its timeout), and does nothing while a change runs on the host: a
//! rollout starts and stops replicas itself and has its own checks; the
//! replicas found after a change get their start window again.

mod policy;
mod replica;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_drivers::RootDir;

pub use policy::{Policy, ReplicaHealth, Verdict, MAX_RESTARTS, RESTART_WINDOW_MS};
pub use replica::address;

use crate::host_metrics::{replicas, Replica};
use crate::logs::LogStore;
use replica::Watched;

/// How often the replicas on the host are looked for again.
const RESCAN_EVERY: Duration = Duration::from_secs(1);
/// Shortest time between two checks of a replica, whatever it asks.
const MIN_EVERY_MS: u64 = 100;
/// Longest sleep of the watch's thread (a change starting, a stop).
const MAX_NAP: Duration = Duration::from_millis(200);

/// What the watch did, for the host's metrics (shared with the observer).
#[derive(Debug, Default)]
pub struct HealStats {
    restarts: AtomicU64,
    given_up: AtomicU32,
    changed: AtomicBool,
}

impl HealStats {
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    pub fn given_up(&self) -> u32 {
        self.given_up.load(Ordering::Relaxed)
    }

    /// Something changed since the last call: the observer samples at
    /// once, so the tower sees a restart without waiting for the next
    /// sample.
    pub fn take_changed(&self) -> bool {
        self.changed.swap(false, Ordering::Relaxed)
    }
}

struct Tracked {
    watched: Watched,
    health: ReplicaHealth,
    next_ms: u64,
}

/// The watch of one host's replicas.
pub struct Healer {
    host: String,
    root: PathBuf,
    logs: Arc<LogStore>,
    stats: Arc<HealStats>,
    epoch: Instant,
    tracked: BTreeMap<String, Tracked>,
    next_scan: Instant,
}

impl Healer {
    pub fn new(host: &str, root: &Path, logs: Arc<LogStore>, stats: Arc<HealStats>) -> Self {
        Self {
            host: host.to_owned(),
            root: root.to_path_buf(),
            logs,
            stats,
            epoch: Instant::now(),
            tracked: BTreeMap::new(),
            next_scan: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// One pass: checks what is due. `busy`: a change runs on the host.
    /// Returns how long to wait before the next pass.
    pub fn pass(&mut self, busy: bool) -> Duration {
        if busy {
            // The rollout owns the replicas; after it, every replica
            // starts afresh (given-up ones were stopped: not running).
            self.tracked.clear();
            self.next_scan = Instant::now();
            return MAX_NAP;
        }
        let found = self.scan();
        let now = self.now_ms();
        let mut next = now + MAX_NAP.as_millis() as u64;
        for r in found {
            let Some(t) = self.tracked.get(&r.path) else {
                continue;
            };
            if t.next_ms <= now {
                self.check(&r, now);
            }
            if let Some(t) = self.tracked.get(&r.path) {
                next = next.min(t.next_ms);
            }
        }
        Duration::from_millis(next.saturating_sub(self.now_ms())).min(MAX_NAP)
    }

    /// The running replicas that ask to be watched; newly found ones get
    /// their start window, gone ones are forgotten.
    fn scan(&mut self) -> Vec<Replica> {
        let Ok(root) = RootDir::open(&self.root) else {
            return Vec::new();
        };
        let now = self.now_ms();
        let rescan = Instant::now() >= self.next_scan;
        let mut found = Vec::new();
        for r in replicas(&self.root) {
            if !rescan && !self.tracked.contains_key(&r.path) {
                continue;
            }
            if replica::supervisor(&r).is_none() {
                continue;
            }
            if rescan && !self.tracked.contains_key(&r.path) {
                let Some(watched) = replica::watched(&root, &r) else {
                    continue;
                };
                self.tracked.insert(
                    r.path.clone(),
                    Tracked {
                        watched,
                        health: ReplicaHealth::new(now),
                        next_ms: now,
                    },
                );
            }
            found.push(r);
        }
        if rescan {
            self.tracked
                .retain(|path, _| found.iter().any(|r| &r.path == path));
            self.next_scan = Instant::now() + RESCAN_EVERY;
        }
        found
    }

    fn check(&mut self, r: &Replica, now: u64) {
        let Some(t) = self.tracked.get_mut(&r.path) else {
            return;
        };
        let result = replica::check(&t.watched);
        let policy = Policy {
            restart_after: t.watched.watch.restart_after,
            start_ms: t.watched.watch.start_ms,
        };
        let verdict = t.health.checked(result.is_ok(), now, policy);
        t.next_ms = now + t.watched.watch.every_ms.max(MIN_EVERY_MS);
        let reason = result.err().unwrap_or_default();
        self.act(r, verdict, &reason);
    }

    fn act(&mut self, r: &Replica, verdict: Verdict, reason: &str) {
        let (host, service, instance, replica) = (&self.host, &r.service, &r.instance, &r.replica);
        match verdict {
            Verdict::Healthy { recovered: true } => {
                tracing::info!(event = "replica_recovered", host = %host, service = %service, instance = %instance, replica = %replica);
                self.log(r, "replica_recovered", "healthy again after its restart");
            }
            Verdict::Failing { streak } => {
                tracing::debug!(event = "replica_unhealthy", host = %host, service = %service, instance = %instance, replica = %replica, failures = streak, reason = %reason);
            }
            Verdict::Restart { streak, restarts } => {
                let sent = replica::supervisor(r)
                    .ok_or_else(|| "its supervisor is gone".to_owned())
                    .and_then(replica::restart);
                if let Err(e) = &sent {
                    tracing::warn!(event = "replica_restart_failed", host = %host, service = %service, instance = %instance, replica = %replica, error = %e);
                    return;
                }
                self.stats.restarts.fetch_add(1, Ordering::Relaxed);
                self.stats.changed.store(true, Ordering::Relaxed);
                tracing::warn!(event = "replica_restarted", host = %host, service = %service, instance = %instance, replica = %replica, failures = streak, restarts = restarts, reason = %reason);
                self.log(r, "replica_restarted", &format!("{streak} failed health checks in a row ({reason}): restarted (SIGTERM, grace period, SIGKILL, start), restart {restarts} of at most {MAX_RESTARTS} in ten minutes"));
            }
            Verdict::GiveUp { restarts } => {
                // Told once it is stopped: the supervisor stops the app
                // (SIGTERM, grace period, SIGKILL), then exits.
                if let Some(pid) = replica::supervisor(r) {
                    let grace = RootDir::open(&self.root)
                        .map_or(Duration::from_secs(10), |root| replica::grace(&root, r));
                    let stopped = replica::stop(pid)
                        .map(|()| replica::wait_gone(pid, grace + Duration::from_secs(5)));
                    if !matches!(stopped, Ok(true)) {
                        tracing::warn!(event = "replica_stop_failed", host = %host, service = %service, instance = %instance, replica = %replica, pid = pid.as_raw());
                    }
                }
                self.stats.given_up.fetch_add(1, Ordering::Relaxed);
                self.stats.changed.store(true, Ordering::Relaxed);
                tracing::error!(event = "replica_abandoned", host = %host, service = %service, instance = %instance, replica = %replica, restarts = restarts, reason = %reason);
                self.log(r, "replica_abandoned", &format!("restarted {restarts} times in ten minutes and still unhealthy ({reason}): stopped and left stopped until the next deploy"));
            }
            Verdict::Healthy { recovered: false } | Verdict::Starting | Verdict::GivenUp => {}
        }
    }

    /// A JSON line in the service's log, beside what the app printed.
    fn log(&self, r: &Replica, event: &str, message: &str) {
        let line = serde_json::json!({
            "event": event,
            "by": "vigie",
            "host": self.host,
            "instance": r.instance,
            "replica": r.replica,
            "message": message,
        });
        self.logs.service_line(
            &r.service,
            &r.instance,
            &r.replica,
            line.to_string().as_bytes(),
        );
    }
}

/// The watch's thread, until `done`; `busy` says whether a change runs.
pub fn spawn(
    host: &str,
    root: &Path,
    logs: Arc<LogStore>,
    stats: Arc<HealStats>,
    busy: impl Fn() -> bool + Send + 'static,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let mut healer = Healer::new(host, root, logs, stats);
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            let nap = healer.pass(busy());
            std::thread::sleep(nap);
        }
    })
}
