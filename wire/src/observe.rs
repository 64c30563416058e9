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
