//! What hosts say of themselves besides changes, held in memory only (see
//! `observe`): the latest metrics sample per host and the logs requests
//! waiting for their host's answer, and the bounds a host's word is held to.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vigie_wire::observe::HostSample;
use vigie_wire::tower::{ApiFault, ApiFaultKind, HostId};

/// How long a host has to answer a logs request.
pub const LOGS_TIMEOUT: Duration = Duration::from_secs(10);
/// A sample older than this many of its intervals is stale.
pub const STALE_AFTER_INTERVALS: u64 = 3;

pub(crate) struct Pending {
    /// Who asked: `(tenant, operator)`.
    pub(crate) asker: (String, String),
    pub(crate) ident: Vec<u8>,
    pub(crate) reply_id: u64,
    pub(crate) host: HostId,
    /// What the caller asked for at most (capped at `MAX_LOG_CHUNK`).
    pub(crate) max_bytes: usize,
    pub(crate) deadline: Instant,
}

/// The interval a sample may claim: a lying host cannot keep a sample
/// fresh for ever (`u64::MAX`) nor make every sample stale at once.
const INTERVAL_MS: std::ops::RangeInclusive<u64> = 1_000..=3_600_000;
/// Longest name, instance or replica of a service a sample may carry.
const MAX_SERVICE_FIELD: usize = 128;
/// Longest error or retention note relayed from a host's logs answer.
pub(crate) const MAX_NOTE: usize = 1_024;

/// What a host sends is checked before it is kept: bounded strings, a
/// plausible interval. Fields that do not pass are dropped, not relayed.
pub(crate) fn bounded(mut sample: HostSample) -> HostSample {
    sample.interval_ms = sample
        .interval_ms
        .clamp(*INTERVAL_MS.start(), *INTERVAL_MS.end());
    let ok = |f: &str| !f.is_empty() && f.len() <= MAX_SERVICE_FIELD;
    let before = sample.services.len();
    sample
        .services
        .retain(|s| ok(&s.name) && ok(&s.instance) && ok(&s.replica));
    sample.services.truncate(vigie_wire::observe::MAX_SERVICES);
    let dropped = before - sample.services.len();
    sample.services_omitted = sample.services_omitted.saturating_add(dropped as u32);
    sample
}

/// `text` cut to at most `max` bytes, on a character boundary.
pub(crate) fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[derive(Default)]
pub struct Observed {
    pub(crate) samples: HashMap<HostId, (HostSample, Instant)>,
    pub(crate) pending: HashMap<u64, Pending>,
    pub(crate) next_request: u64,
}

/// Whether a sample that arrived `age` ago is no longer current (no I/O).
pub fn stale(sample: &HostSample, age: Duration) -> bool {
    let every = sample.interval_ms.max(1_000);
    age.as_millis() as u64 > every.saturating_mul(STALE_AFTER_INTERVALS)
}

pub(crate) fn unavailable(message: String) -> ApiFault {
    ApiFault::new(ApiFaultKind::Unavailable, message)
}
