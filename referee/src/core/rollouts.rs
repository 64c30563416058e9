//! Deploys run by the tower (issue 19): an operator's `Start` stores a
//! rollout under `rollout/<tenant>/<app>/<environment>`, which is also
//! the environment's lock — a second `Start` while it has not ended is a
//! conflict naming who holds it and since when, unless `force_unlock`
//! (audited `deploy_unlocked`, for a tower that lost track: the unlocked
//! rollout's daemon finds its next `Progress` refused and stops). The
//! deploy daemon lists the rollouts not ended (`Rollouts`) and records
//! each one's state before it acts (`Progress`, checked against the
//! rollout's id), with the lines its operator follows (`Rollout`).
//! Here the rollout records' rules and reads, without the core; the
//! calls are `handlers/rollouts.rs`'s.

use vigie_wire::deploy::{Rollout, RolloutEnd};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller, Origin};

use crate::core::codec::decode;
use crate::core::fetched::Fetched;
use crate::core::model::ROLLOUT_PREFIX as PREFIX;
use crate::core::turn::Turn;

pub(crate) fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

fn storage(e: impl std::fmt::Display) -> ApiFault {
    fault(ApiFaultKind::Storage, e.to_string())
}

/// The stored value of `key`, counting this turn's writes not yet stored.
pub(crate) fn current(db: &Fetched, turn: &Turn, key: &[u8]) -> Result<Option<Vec<u8>>, ApiFault> {
    if let Some((_, value)) = turn.writes.iter().rev().find(|(k, _)| k == key) {
        return Ok(value.clone());
    }
    db.get(key)
        .map(|v| v.map(<[u8]>::to_vec))
        .map_err(|e| fault(ApiFaultKind::Storage, e))
}

/// The stored rollout of `key`, counting this turn's writes.
pub(crate) fn stored(db: &Fetched, turn: &Turn, key: &[u8]) -> Result<Option<Rollout>, ApiFault> {
    current(db, turn, key)?
        .map(|bytes| decode(key, &bytes).map_err(storage))
        .transpose()
}

/// `ms` since the epoch as RFC 3339 UTC, to the second.
pub(crate) fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = ((secs / 86_400) as i64, secs % 86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// Who holds a rollout's environment, for a refusal.
pub(crate) fn holder(r: &Rollout) -> String {
    format!(
        "{}/{} is being deployed by {} since {} (rollout {}): follow it with `vigie deployments watch {}/{}`; \
         if the tower lost track of it, deploy again with --force-unlock",
        r.app,
        r.environment,
        r.operator,
        utc(r.started_ms),
        r.id,
        r.app,
        r.environment
    )
}

/// A rollout's id: unique per environment and start, and never the id of
/// the rollout it follows (chained to it: two starts in one millisecond,
/// a force-unlock's, differ).
pub(crate) fn rollout_id(
    tenant: &str,
    app: &str,
    environment: &str,
    at_ms: u64,
    before: &str,
) -> String {
    use sha2::{Digest, Sha256};
    let text = format!("{tenant}/{app}/{environment}/{at_ms}/{before}");
    let sum = Sha256::digest(text.as_bytes());
    let hex: String = sum.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("d{hex}")
}

/// `held`, a rollout not ended, unlocked by `by` at `now`, and the
/// audit's words for it.
pub(crate) fn unlocked(mut held: Rollout, by: &str, now: u64) -> (Rollout, String) {
    let summary = format!(
        "{}/{}: rollout {} of {} (since {}) unlocked",
        held.app,
        held.environment,
        held.id,
        held.operator,
        utc(held.started_ms)
    );
    held.end = Some(RolloutEnd::Unlocked);
    held.ended_ms = Some(now);
    held.unlocked_by = Some(by.to_owned());
    (held, summary)
}

/// A deploy to start, as asked (or as `follow.rs` repeats one).
pub(crate) struct Start {
    pub file: String,
    pub text: String,
    pub parallel: u32,
    pub from_maintenance: bool,
    pub force_unlock: bool,
    pub version: Option<String>,
    /// The hosts that joined, for a follow deploy (said in its audit).
    pub joined: Vec<String>,
    pub canary: u32,
}

pub(crate) fn tower_only(caller: &Caller) -> Result<(), ApiFault> {
    match caller.origin {
        Origin::Tower => Ok(()),
        Origin::Operator { .. } => Err(fault(
            ApiFaultKind::Forbidden,
            "only the tower's deploy daemon makes this call",
        )),
    }
}

pub(crate) fn stored_rollout(
    db: &Fetched,
    turn: &Turn,
    key: &[u8],
) -> Result<Option<Rollout>, ApiFault> {
    stored(db, turn, key)
}

/// Every rollout not ended, all tenants, this turn's writes included.
pub(crate) fn open_rollouts(db: &Fetched, turn: &Turn) -> Result<Vec<Rollout>, ApiFault> {
    let mut all: Vec<Rollout> = db
        .scan(PREFIX.as_bytes())
        .map_err(storage)?
        .iter()
        .map(|(k, v)| decode(k, v).map_err(storage))
        .collect::<Result<_, _>>()?;
    for (key, value) in &turn.writes {
        if let (true, Some(value)) = (key.starts_with(PREFIX.as_bytes()), value) {
            let r: Rollout = decode(key, value).map_err(storage)?;
            all.retain(|o| {
                (&o.tenant, &o.app, &o.environment) != (&r.tenant, &r.app, &r.environment)
            });
            all.push(r);
        }
    }
    all.retain(|r| r.end.is_none());
    Ok(all)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_times_read_as_rfc_3339() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::utc(1_765_059_662_000), "2025-12-06T22:21:02Z");
        assert_eq!(super::utc(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
