//! `audit` answered off the decision loop, by the reader thread of
//! `audit_verify.rs`: a filter that matches little (a host, an operator,
//! a change, a time window far back) reads back through much of the chain,
//! and a paged `audit` reads all of it, so no dispatch may wait behind
//! them. The reader reads the newest pages first, as the loop would
//! (`core/audit_read.rs` names the pages and says when they hold the
//! answer), and filters with the caller's [`Sight`], taken by the loop
//! when the call arrived.

use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind, AuditRecord};

use crate::core::audit::{self, AuditChain};
use crate::core::audit_query::AuditQuery;
use crate::core::audit_read::{self, Sight};
use crate::core::codec::decode;
use crate::shell::store::Store;

fn storage(e: impl std::fmt::Display) -> ApiFault {
    ApiFault::new(ApiFaultKind::Storage, e.to_string())
}

fn tampered(e: impl std::fmt::Display) -> ApiFault {
    ApiFault::new(ApiFaultKind::Tampered, e.to_string())
}

/// Whether `call` is answered off the loop: an `audit` list, paged or not.
pub fn off_loop(call: &ApiCall) -> bool {
    match call {
        ApiCall::Audit { .. } => true,
        ApiCall::Page { call, .. } => matches!(**call, ApiCall::Audit { .. }),
        _ => false,
    }
}

/// The answer to an `audit` call (paged or not) from the chain in `db`.
pub fn list(db: &dyn Store, sight: &Sight, call: &ApiCall) -> Result<ApiAnswer, ApiFault> {
    match call {
        ApiCall::Page { call, page } => {
            let whole = whole(db, sight, call)?;
            crate::core::paging::page(ApiAnswer::Audit(whole), page)
        }
        c => {
            let query = AuditQuery::of(c)
                .ok_or_else(|| ApiFault::new(ApiFaultKind::Invalid, "not an audit call"))?;
            Ok(ApiAnswer::Audit(
                sight.answer(&query, newest(db, sight, &query)?),
            ))
        }
    }
}

/// The chain's newest pages, oldest record first, until they hold the
/// query's answer or the chain's start is reached.
fn newest(db: &dyn Store, sight: &Sight, query: &AuditQuery) -> Result<Vec<AuditRecord>, ApiFault> {
    let last = match db.get(audit::HEAD_KEY).map_err(storage)? {
        Some(v) => {
            AuditChain::decode_head(&v)
                .ok_or_else(|| tampered("the audit head is unreadable"))?
                .last_seq
        }
        None => 0,
    };
    let mut pages: Vec<Vec<AuditRecord>> = Vec::new();
    let mut read: Vec<AuditRecord> = Vec::new();
    for k in 0.. {
        let Some((start, limit)) = audit_read::page(k, last) else {
            break;
        };
        let entries = db.page(audit::PREFIX, &start, limit).map_err(storage)?;
        pages.push(audit_read::decode_all(entries.iter().collect())?);
        read = pages.iter().rev().flatten().cloned().collect();
        if audit_read::answered(sight, query, &read) {
            break;
        }
    }
    Ok(read)
}

/// Every record a paged `audit` lists, oldest first (the page is cut from
/// this whole answer, as the loop cuts every paged list).
fn whole(db: &dyn Store, sight: &Sight, call: &ApiCall) -> Result<Vec<AuditRecord>, ApiFault> {
    let ApiCall::Audit {
        host,
        change,
        filter,
        ..
    } = call
    else {
        return Err(ApiFault::new(
            ApiFaultKind::Invalid,
            "only a list call is paged",
        ));
    };
    let query = AuditQuery {
        host: host.clone(),
        change: change.clone(),
        filter: (**filter).clone(),
        limit: usize::MAX,
    };
    let mut picked = Vec::new();
    for entry in db.scan(audit::PREFIX, None) {
        let (k, v) = entry.map_err(storage)?;
        let r: AuditRecord = decode(&k, &v).map_err(tampered)?;
        // Only what the caller sees and the query picks is kept.
        picked.extend(sight.filter([r]).filter(|r| query.matches(r)));
    }
    Ok(sight.answer(&query, picked))
}
