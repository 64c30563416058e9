//! Which part of the audit chain an `audit` call reads: the newest
//! records first, in pages that double (256, 512, …), until the records
//! read hold the query's whole answer or the chain's start is reached. A
//! page is a forward range of record keys from a known sequence number,
//! so it costs its own records whatever the chain's length. No I/O:
//! `fetch.rs` reads the pages this names.

use std::collections::HashMap;

use vigie_wire::tower::{ApiFault, ApiFaultKind, AuditRecord, Caller, Labels, Origin};

use crate::core::audit::record_key;
use crate::core::audit_query::AuditQuery;
use crate::core::codec::decode;
use crate::core::codec::Entry;
use crate::core::scope::Visible;
use crate::core::state::Core;

/// Records in the newest page; each page back is twice the one after it.
const FIRST: u64 = 256;

/// The `k`-th page back from record `last` (0: the newest): its first
/// key and how many records it spans, or `None` past the chain's start.
pub fn page(k: usize, last: u64) -> Option<(Vec<u8>, usize)> {
    let k = u32::try_from(k).ok().filter(|k| *k < 40)?;
    let newer = FIRST.checked_mul((1u64 << k) - 1)?;
    let hi = last.checked_sub(newer).filter(|hi| *hi > 0)?;
    let lo = hi.saturating_sub((FIRST << k) - 1).max(1);
    Some((record_key(lo), usize::try_from(hi - lo + 1).ok()?))
}

/// The records read, oldest first; a record that does not decode was
/// tampered with.
pub fn decode_all(entries: Vec<&Entry>) -> Result<Vec<AuditRecord>, ApiFault> {
    entries
        .into_iter()
        .map(|(key, value)| {
            decode::<AuditRecord>(key, value)
                .map_err(|err| ApiFault::new(ApiFaultKind::Tampered, err.to_string()))
        })
        .collect()
}

/// What a caller sees of the chain, taken from the tower when the call
/// arrives: its tenant's records whose host its scope covers (a host the
/// tower does not know judged on its name alone), so that a reader off the
/// decision loop filters as the loop would.
#[derive(Debug, Clone)]
pub struct Sight {
    caller: Caller,
    /// Every host the tower knows: whether the caller sees it.
    known: HashMap<String, bool>,
}

impl Sight {
    pub fn of(core: &Core, caller: &Caller) -> Self {
        let vis = Visible::of(caller);
        let known = core
            .hosts()
            .values()
            .map(|h| {
                let id = &h.rec.id;
                (id.clone(), vis.host(&h.rec.tenant, id, &h.rec.labels))
            })
            .collect();
        Self {
            caller: caller.clone(),
            known,
        }
    }

    /// The records of `records` the caller sees.
    pub fn filter<'a, R: std::borrow::Borrow<AuditRecord> + 'a>(
        &'a self,
        records: impl IntoIterator<Item = R> + 'a,
    ) -> impl Iterator<Item = R> + 'a {
        let vis = Visible::of(&self.caller);
        let none = Labels::new();
        records.into_iter().filter(move |r| {
            let r = r.borrow();
            r.tenant == self.caller.tenant
                && if r.host.is_empty() {
                    vis.unscoped()
                } else {
                    match self.known.get(&r.host) {
                        Some(seen) => *seen,
                        None => vis.host(&self.caller.tenant, &r.host, &none),
                    }
                }
        })
    }

    /// The answer to `query` from `records` (oldest first): the records
    /// it picks, the chain's own numbers hidden from all but the tower
    /// (they count every tenant's records).
    pub fn answer(&self, query: &AuditQuery, records: Vec<AuditRecord>) -> Vec<AuditRecord> {
        let mut v = query.select(self.filter(records));
        if self.caller.origin != Origin::Tower {
            for r in &mut v {
                r.seq = 0;
            }
        }
        v
    }
}

/// Whether `records`, the newest of the chain, hold the query's whole
/// answer: `limit` matches when it pages back (the newest), or a record
/// of the tenant at or before `after` when it pages forward (the
/// tenant's numbers grow along the chain, so none older can match).
pub fn answered(sight: &Sight, query: &AuditQuery, records: &[AuditRecord]) -> bool {
    let mut mine = sight.filter(records);
    if let Some(after) = query.filter.after {
        return mine.any(|r| r.tenant_seq <= after);
    }
    mine.filter(|r| query.matches(r)).count() >= query.limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_double_back_to_the_chain_s_start() {
        let seq = |k| page(k, 1_000).map(|(key, n)| (String::from_utf8(key).unwrap(), n));
        assert_eq!(
            seq(0),
            Some((String::from_utf8(record_key(745)).unwrap(), 256))
        );
        assert_eq!(
            seq(1),
            Some((String::from_utf8(record_key(233)).unwrap(), 512))
        );
        assert_eq!(
            seq(2),
            Some((String::from_utf8(record_key(1)).unwrap(), 232))
        );
        assert_eq!(seq(3), None);
        assert_eq!(page(0, 0), None);
        assert_eq!(page(0, 3).map(|(_, n)| n), Some(3));
    }
}
