//! What hosts say about themselves beyond changes: basic host metrics
//! (sent by plugs and agents every few seconds, kept in the referee's
//! memory only) and service logs (kept on the host, fetched on demand).
//!
//! Neither is tower state: the referee never stores them. Integers only
//! (milliseconds, hundredths, bytes), so the messages keep `Eq`.

use serde::{Deserialize, Serialize};

use crate::ids::{ChangeId, HostId};

/// Most services a sample lists (the rest are counted in
/// [`HostSample::services_omitted`]): a sample stays small.
pub const MAX_SERVICES: usize = 64;
/// Largest chunk of logs one answer carries.
pub const MAX_LOG_CHUNK: u32 = 256 * 1024;

/// One host's resources at one moment (`PlugEvent::HostMetrics`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSample {
    pub host: HostId,
    /// The host's clock when sampled (shown; staleness is judged by the
    /// referee's own clock when the sample arrived).
    pub at_ms: u64,
    /// How often the host samples: the referee calls a sample stale after
    /// a few of these without a new one.
    pub interval_ms: u64,
    pub cpus: u32,
    /// CPU time spent busy (user, nice, system, irq, softirq, steal) and
    /// idle (idle, iowait) since boot, all CPUs, in milliseconds.
    pub cpu_busy_ms: u64,
    pub cpu_idle_ms: u64,
    /// Load averages over 1, 5 and 15 minutes, in hundredths.
    pub load_centi: [u32; 3],
    pub memory_total_bytes: u64,
    pub memory_available_bytes: u64,
    /// The filesystem holding the host's root.
    pub disk_total_bytes: u64,
    pub disk_available_bytes: u64,
    pub uptime_ms: u64,
    /// The deployer's instances found on the host, at most [`MAX_SERVICES`].
    pub services: Vec<ServiceState>,
    pub services_omitted: u32,
    /// Replicas the host's health watch restarted since its agent started
    /// (absent from an older agent's samples: zero).
    #[serde(default)]
    pub replica_restarts: u64,
    /// Replicas it restarted too often, stopped and left stopped.
    #[serde(default)]
    pub replicas_given_up: u32,
}

/// The file of a deployed instance (`INSTANCE_DIR/health_watch`) that asks
/// the host's agent to keep checking its replicas after the rollout:
/// written by the deployer, read by the plug's health watch.
pub const HEALTH_WATCH_FILE: &str = "health_watch";

/// What [`HEALTH_WATCH_FILE`] says, one `key=value` a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthWatch {
    /// The URL path GET on the replica's own address and port.
    pub path: String,
    pub every_ms: u64,
    pub timeout_ms: u64,
    /// Failed checks in a row that restart the replica (0: never).
    pub restart_after: u32,
    /// How long a (re)started replica has before its failures count.
    pub start_ms: u64,
}

impl HealthWatch {
    pub fn render(&self) -> String {
        format!(
            "# Written by the Vigie deployer: the agent's health watch of this instance.\n\
             path={}\nevery_ms={}\ntimeout_ms={}\nrestart_after={}\nstart_ms={}\n",
            self.path, self.every_ms, self.timeout_ms, self.restart_after, self.start_ms
        )
    }

    /// `None` unless every key is there, once, with a valid value: the
    /// file sits where the deployed app could write.
    pub fn parse(text: &str) -> Option<HealthWatch> {
        let mut keys = std::collections::BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (k, v) = line.split_once('=')?;
            if keys.insert(k, v).is_some() {
                return None;
            }
        }
        let num = |k: &str| keys.get(k).and_then(|v| v.parse::<u64>().ok());
        let path = keys.get("path")?;
        if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        Some(HealthWatch {
            path: (*path).to_owned(),
            every_ms: num("every_ms")?,
            timeout_ms: num("timeout_ms")?,
            restart_after: u32::try_from(num("restart_after")?).ok()?,
            start_ms: num("start_ms")?,
        })
    }
}

/// One replica of one instance the deployer runs on a host
/// (`/srv/services/auto-*/<instance>/replica-<n>/`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The service's directory, e.g. `auto-shop-prod-web`.
    pub name: String,
    pub instance: String,
    pub replica: String,
    /// Its supervisor is alive (pid file names a live process).
    pub running: bool,
}

/// A host's latest sample as the referee answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostMetricsView {
    pub host: HostId,
    /// `None`: no sample since the referee started.
    pub sample: Option<HostSample>,
    /// Milliseconds since the sample arrived.
    pub age_ms: u64,
    /// Older than a few of its intervals: not current, never exported.
    pub stale: bool,
}

/// Which logs of a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogSource {
    /// The full output of the steps the host ran (all changes, or one).
    Steps { change: Option<ChangeId> },
    /// A deployed service's stdout and stderr (`auto-…` directory name).
    Service { name: String },
}

/// Where a reader stopped: the file generation and the offset in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogCursor {
    pub generation: u64,
    pub offset: u64,
}

/// `ApiCall::Logs`: a chunk of a host's logs, asked of the host itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsQuery {
    pub host: HostId,
    pub source: LogSource,
    /// Only records at or after this time (host clock, Unix ms).
    /// `Some(u64::MAX)` passes over every record there is: the answer is
    /// empty, its cursor at the end (how `vigie logs --follow` skips ahead
    /// of a writer faster than it reads, see [`LogsPage::skipped_bytes`]).
    pub since_ms: Option<u64>,
    /// Go on from here (`--follow`); `None`: from the oldest kept.
    pub cursor: Option<LogCursor>,
    /// At most this many bytes of text (capped at [`MAX_LOG_CHUNK`]).
    pub max_bytes: u32,
}

/// The referee asks a plug for logs (`Published::LogsRequest`, on the
/// host's exact topic, like an order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    /// The referee's number for this request: the answer names it.
    pub request: u64,
    pub query: LogsQuery,
}

/// A plug's answer (`PlugEvent::Logs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsChunk {
    pub host: HostId,
    pub request: u64,
    pub body: Result<LogsPage, String>,
}

/// Some log lines and where to go on from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsPage {
    /// Whole lines, each `TIME CHANGE STEP STREAM text` for steps or
    /// `text` for services.
    pub text: String,
    pub cursor: LogCursor,
    /// More is there beyond the cursor (the chunk hit its size).
    pub more: bool,
    /// Part of the asked window was already rotated away: what is shown
    /// starts later than asked. Says from when the host has logs.
    pub beyond_retention: Option<String>,
    /// Bytes of records of the asked source (and change) passed over
    /// between the cursor and this page's end for being older than
    /// `since_ms`.
    #[serde(default)]
    pub skipped_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_health_watch_reads_back_and_a_tampered_one_is_refused() {
        let w = HealthWatch {
            path: "/health".into(),
            every_ms: 200,
            timeout_ms: 1_000,
            restart_after: 3,
            start_ms: 6_000,
        };
        assert_eq!(HealthWatch::parse(&w.render()), Some(w.clone()));
        let text = w.render();
        // Written where the app can write: anything odd is no watch at all.
        for bad in [
            text.replace("path=/health", "path=http://elsewhere/"),
            text.replace("path=/health", "path=/a b"),
            format!("{text}every_ms=1\n"),
            text.replace("every_ms=200", "every_ms=-1"),
            text.replace("restart_after=3\n", ""),
            format!("{text}garbage\n"),
        ] {
            assert_eq!(HealthWatch::parse(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_sample_from_an_older_agent_has_no_health_watch_counts() {
        #[derive(Serialize)]
        struct Old {
            host: String,
            at_ms: u64,
            interval_ms: u64,
            cpus: u32,
            cpu_busy_ms: u64,
            cpu_idle_ms: u64,
            load_centi: [u32; 3],
            memory_total_bytes: u64,
            memory_available_bytes: u64,
            disk_total_bytes: u64,
            disk_available_bytes: u64,
            uptime_ms: u64,
            services: Vec<ServiceState>,
            services_omitted: u32,
        }
        let old = Old {
            host: "h".into(),
            at_ms: 1,
            interval_ms: 2,
            cpus: 3,
            cpu_busy_ms: 4,
            cpu_idle_ms: 5,
            load_centi: [6, 7, 8],
            memory_total_bytes: 9,
            memory_available_bytes: 10,
            disk_total_bytes: 11,
            disk_available_bytes: 12,
            uptime_ms: 13,
            services: Vec::new(),
            services_omitted: 0,
        };
        let bytes = rmp_serde::to_vec(&old).unwrap();
        let new: HostSample = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(
            (new.cpus, new.replica_restarts, new.replicas_given_up),
            (3, 0, 0)
        );
    }
}
