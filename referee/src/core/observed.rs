//! What hosts say of themselves besides changes, held in memory only (see
//! `observe`): the latest metrics sample per host and the logs requests
//! waiting for their host's answer, and the bounds a host's word is held to.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vigie_wire::limits::Shares;
use vigie_wire::observe::{HostSample, LogsChunk};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, ApiReply, HostId};

use crate::core::turn::Turn;

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
    samples: HashMap<HostId, (HostSample, Instant)>,
    pending: HashMap<u64, Pending>,
    next_request: u64,
}

impl Observed {
    /// Keeps a registered host's sample, bounded first.
    pub fn keep_sample(&mut self, sample: HostSample, now: Instant) {
        let sample = bounded(sample);
        let host = sample.host.clone();
        let first = self.samples.insert(host.clone(), (sample, now));
        if first.is_none() {
            // Once per host and start, not per sample.
            tracing::info!(event = "host_sampled", host = %host);
        }
    }

    /// A host's latest sample and when it came.
    pub fn sample(&self, host: &str) -> Option<&(HostSample, Instant)> {
        self.samples.get(host)
    }

    /// A removed host's sample goes with it: a host registered later
    /// under the same id (another tenant's, maybe) starts without one.
    pub fn forget_sample(&mut self, host: &str) {
        self.samples.remove(host);
    }

    /// The number of the next logs request.
    pub(crate) fn next_request(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// A logs request `request` waits for its host's answer.
    pub(crate) fn wait(&mut self, request: u64, pending: Pending) {
        self.pending.insert(request, pending);
    }

    /// Waiting requests are bounded three ways (the setup's `limits:`):
    /// one operator asking in a loop cannot take his tenant's share, one
    /// tenant (many operators, a host that never answers) cannot take the
    /// tower's, and the tower's bounds memory. The tenant's share is
    /// checked before the tower's so that a tenant at its share is told
    /// so, and the others still have room.
    pub fn check_logs_share(&self, asker: &(String, String), l: &Shares) -> Result<(), ApiFault> {
        let (mut tenant, mut operator) = (0usize, 0usize);
        for p in self.pending.values() {
            if p.asker.0 == asker.0 {
                tenant += 1;
                operator += usize::from(p.asker.1 == asker.1);
            }
        }
        if operator >= l.logs_waiting_per_operator as usize {
            return Err(unavailable(format!(
                "{operator} of your logs requests are still waiting for their hosts: try again \
                 when they are answered"
            )));
        }
        if tenant >= l.logs_waiting_per_tenant as usize {
            return Err(unavailable(format!(
                "{tenant} logs requests of tenant {} are waiting for their hosts, its share \
                 (limits.logs_waiting_per_tenant): try again when they are answered",
                asker.0
            )));
        }
        if self.pending.len() >= l.logs_waiting as usize {
            return Err(unavailable(
                "too many logs requests are waiting for their hosts: try again".into(),
            ));
        }
        Ok(())
    }

    /// A host's answer: relayed to the caller waiting for it, if any (an
    /// answer from another host than asked is dropped).
    pub fn logs_answer(&mut self, chunk: LogsChunk, turn: &mut Turn) {
        let ours = self
            .pending
            .get(&chunk.request)
            .is_some_and(|p| p.host == chunk.host);
        if !ours {
            return;
        }
        let Some(p) = self.pending.remove(&chunk.request) else {
            return;
        };
        // A host answers at most what was asked; a lying one is refused
        // rather than relayed, and its notes are cut.
        let body = match chunk.body {
            Ok(page) if page.text.len() > p.max_bytes => Err(format!(
                "it sent {} bytes of logs, more than the {} asked",
                page.text.len(),
                p.max_bytes
            )),
            Ok(mut page) => {
                page.beyond_retention = page.beyond_retention.map(|n| cut(n, MAX_NOTE));
                Ok(page)
            }
            Err(why) => Err(cut(why, MAX_NOTE)),
        };
        let body = body.map(ApiAnswer::Logs).map_err(|why| {
            ApiFault::new(ApiFaultKind::Invalid, format!("host {}: {why}", chunk.host))
        });
        turn.replies.push((
            p.ident,
            ApiReply {
                id: p.reply_id,
                body,
            },
        ));
    }

    /// Requests whose host did not answer in time get a clear error.
    pub fn expire_logs(&mut self, now: Instant, turn: &mut Turn) {
        let late: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now >= p.deadline)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            if let Some(p) = self.pending.remove(&id) {
                let fault = unavailable(format!(
                    "host {} did not answer within {} s (busy with a long step, or going \
                     offline): try again",
                    p.host,
                    LOGS_TIMEOUT.as_secs()
                ));
                turn.replies.push((
                    p.ident,
                    ApiReply {
                        id: p.reply_id,
                        body: Err(fault),
                    },
                ));
            }
        }
    }
}

/// Whether a sample that arrived `age` ago is no longer current (no I/O).
pub fn stale(sample: &HostSample, age: Duration) -> bool {
    let every = sample.interval_ms.max(1_000);
    age.as_millis() as u64 > every.saturating_mul(STALE_AFTER_INTERVALS)
}

pub(crate) fn unavailable(message: String) -> ApiFault {
    ApiFault::new(ApiFaultKind::Unavailable, message)
}
