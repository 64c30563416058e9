//! The operator's calls, dispatched (model: rust-analyzer's
//! `handlers/dispatch.rs`): one `match` from each `ApiCall` to the
//! handler or sub-state method that answers it, and the list calls'
//! whole answers for `paging.rs`. Every call is scoped to the caller's
//! tenant: a host, change or audit record of another tenant does not
//! exist for them.

use std::time::Instant;

use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind, AuditRecord, Caller, Origin};

use crate::core::audit::{self, verify_chain, AuditChain};
use crate::core::audit_query::AuditQuery;
use crate::core::codec::decode;
use crate::core::fetched::Fetched;
use crate::core::handlers::{changes, host_calls, lifecycle, observe};
use crate::core::keys::KeyCall;
use crate::core::labels::Register;
use crate::core::operators::OperatorCall;
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::Turn;

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

fn storage(e: impl std::fmt::Display) -> ApiFault {
    fault(ApiFaultKind::Storage, e.to_string())
}

/// Answers one call (its idempotency already handled by `replay.rs`).
pub fn api(
    core: &mut Core,
    caller: &Caller,
    call: ApiCall,
    db: &Fetched,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    match call {
        ApiCall::Submit { spec, target } => changes::submit(core, caller, spec, &target, now, turn),
        ApiCall::Status {
            change: Some(id), ..
        } => Ok(ApiAnswer::Changes(vec![changes::with_waiting(
            core,
            changes::find(core, caller, &id, db)?,
        )])),
        ApiCall::Status {
            change: None,
            limit,
        } => Ok(latest_views(core, caller, limit)),
        ApiCall::StatusOf { changes } => changes::status_of(core, caller, &changes, db),
        ApiCall::Queue { host } => changes::queue(core, caller, &host),
        ApiCall::Cancel { change } => lifecycle::cancel(core, caller, &change, db, turn),
        c @ ApiCall::Audit { .. } => audit_list(core, caller, c, db),
        ApiCall::Page { call, page } => {
            let whole = whole_list(core, caller, *call, db, now, turn)?;
            crate::core::paging::page(whole, &page)
        }
        ApiCall::AuditVerify => audit_verify(caller, db),
        ApiCall::HostAdd { host, labels } => {
            host_calls::host_add(core, caller, &host, Register::New(labels), turn)
        }
        ApiCall::HostLabel { host, set, remove } => {
            super::host_labels::host_label(core, caller, &host, set, remove, turn)
        }
        ApiCall::HostRemove { host, force } => {
            lifecycle::host_remove(core, caller, &host, force, turn)
        }
        ApiCall::HostRelease { host } => lifecycle::host_release(core, caller, &host, now, turn),
        ApiCall::Abandon { change, hold } => {
            lifecycle::abandon(core, caller, &change, hold, db, now, turn)
        }
        ApiCall::Retry { change } => lifecycle::retry(core, caller, &change, db, now, turn),
        c @ (ApiCall::KeyReadmit { .. }
        | ApiCall::Keys
        | ApiCall::KeysPending { .. }
        | ApiCall::KeyAdd { .. }
        | ApiCall::KeyAccept { .. }
        | ApiCall::KeyRevoke { .. }) => key_api(core, caller, c, turn),
        c @ (ApiCall::Operators
        | ApiCall::OperatorAdd { .. }
        | ApiCall::OperatorRotateKey { .. }
        | ApiCall::OperatorRevoke { .. }
        | ApiCall::OperatorGrant { .. }
        | ApiCall::OperatorUngrant { .. }) => operator_api(core, caller, c, turn),
        ApiCall::Deploy(call) => super::deployments::deploy_call(core, caller, call, db, turn),
        ApiCall::Catalog(vigie_wire::catalog::CatalogCall::AppRemove { name, version }) => {
            super::app_deploys::app_remove(core, caller, &name, &version, db, turn)
                .map(ApiAnswer::Catalog)
        }
        ApiCall::Catalog(c) => super::catalog_calls::catalog_call(core, caller, c, db, now, turn),
        ApiCall::HostMetrics { host } => observe::host_metrics(core, caller, host, now),
        // Answered later, by the server loop (`observe.rs`).
        ApiCall::Logs(_) => Err(ApiFault::new(
            ApiFaultKind::Invalid,
            "a logs call is answered by the referee's loop",
        )),
        ApiCall::TowerStatus => {
            let vis = Visible::of(caller);
            core.health().status(|id| {
                core.hosts()
                    .get(id)
                    .is_some_and(|host| vis.host(&host.rec.tenant, id, &host.rec.labels))
            })
        }
        ApiCall::Web(w) => super::web_auth::web_call(core, caller, w, db, turn),
        ApiCall::Secrets(c) => super::secrets::secrets_call(core, caller, c, db, turn),
        ApiCall::Hosts => Ok(host_calls::hosts_view(core, caller, turn.now_ms)),
    }
}

/// The caller's latest changes (`status` without an id).
fn latest_views(core: &Core, caller: &Caller, limit: u32) -> ApiAnswer {
    ApiAnswer::Changes(
        changes::latest(core, caller, limit)
            .into_iter()
            .map(|v| changes::with_waiting(core, v))
            .collect(),
    )
}

/// `audit`: the records a query picks, at most `MAX_LIST`, from the
/// newest pages of the chain `fetch.rs` read for it.
fn audit_list(
    core: &Core,
    caller: &Caller,
    call: ApiCall,
    db: &Fetched,
) -> Result<ApiAnswer, ApiFault> {
    let query =
        AuditQuery::of(&call).ok_or_else(|| fault(ApiFaultKind::Invalid, "not an audit call"))?;
    let read = db.pages(audit::PREFIX).map_err(storage)?;
    let records = crate::core::audit_read::decode_all(read)?;
    Ok(ApiAnswer::Audit(audit_records(
        core, caller, &query, records,
    )))
}

/// The whole chain checked against its head; the count is the
/// caller's tenant's records only.
fn audit_verify(caller: &Caller, db: &Fetched) -> Result<ApiAnswer, ApiFault> {
    let head = match db.get(audit::HEAD_KEY).map_err(storage)? {
        Some(v) => AuditChain::decode_head(v)
            .ok_or_else(|| fault(ApiFaultKind::Tampered, "the audit head is unreadable"))?,
        None => AuditChain::default(),
    };
    let all = read_audit(db)?;
    // The whole chain is checked; the count is the caller's
    // tenant's records only (the chain holds every tenant's).
    let mine = all.iter().filter(|r| r.tenant == caller.tenant).count();
    let at = verify_chain(all, &head).map_err(|e| fault(ApiFaultKind::Tampered, e))?;
    Ok(ApiAnswer::AuditVerified {
        records: mine as u64,
        head: at.last_hash,
    })
}

/// The key registry's calls.
fn key_api(
    core: &mut Core,
    caller: &Caller,
    call: ApiCall,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let call = match call {
        ApiCall::KeyReadmit { host, public } => KeyCall::Readmit { host, public },
        ApiCall::Keys => KeyCall::List,
        ApiCall::KeysPending { knocks, dropped } => KeyCall::Pending { knocks, dropped },
        ApiCall::KeyAdd { host, public } => KeyCall::Add { host, public },
        ApiCall::KeyAccept { host, public } => KeyCall::Accept { host, public },
        ApiCall::KeyRevoke { host } => KeyCall::Revoke { host },
        _ => return Err(fault(ApiFaultKind::Invalid, "not a key call")),
    };
    super::keys::key_call(core, caller, call, turn)
}

/// The operators' calls.
fn operator_api(
    core: &mut Core,
    caller: &Caller,
    call: ApiCall,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let call = match call {
        ApiCall::Operators => OperatorCall::List,
        ApiCall::OperatorAdd {
            name,
            public,
            grants,
        } => OperatorCall::Add {
            name,
            public,
            grants,
        },
        ApiCall::OperatorRotateKey { name, public } => OperatorCall::RotateKey { name, public },
        ApiCall::OperatorRevoke { name } => OperatorCall::Revoke { name },
        ApiCall::OperatorGrant { name, grant } => OperatorCall::Regrant {
            name,
            grant,
            give: true,
        },
        ApiCall::OperatorUngrant { name, grant } => OperatorCall::Regrant {
            name,
            grant,
            give: false,
        },
        _ => return Err(fault(ApiFaultKind::Invalid, "not an operator call")),
    };
    super::operators::operator_call(core, caller, call, turn)
}

/// A list call's whole answer, for [`crate::core::paging`] to cut (the
/// unpaged calls keep their own limits).
fn whole_list(
    core: &mut Core,
    caller: &Caller,
    call: ApiCall,
    db: &Fetched,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    use vigie_wire::catalog::CatalogCall as C;
    match call {
        ApiCall::Status { change: None, .. } => Ok(ApiAnswer::Changes(
            changes::latest(core, caller, u32::MAX)
                .into_iter()
                .map(|v| changes::with_waiting(core, v))
                .collect(),
        )),
        ApiCall::Audit {
            host,
            change,
            filter,
            ..
        } => {
            let query = AuditQuery {
                host,
                change,
                filter: *filter,
                limit: usize::MAX,
            };
            Ok(ApiAnswer::Audit(audit_records(
                core,
                caller,
                &query,
                read_audit(db)?,
            )))
        }
        c @ (ApiCall::Hosts
        | ApiCall::Keys
        | ApiCall::Operators
        | ApiCall::Queue { .. }
        | ApiCall::HostMetrics { host: None }
        | ApiCall::Deploy(vigie_wire::deploy::DeployCall::List)
        | ApiCall::Catalog(
            C::Sessions | C::Servers { .. } | C::Pools | C::Allocations { .. } | C::Apps,
        )) => api(core, caller, c, db, now, turn),
        _ => Err(fault(ApiFaultKind::Invalid, "only a list call is paged")),
    }
}

/// The audit records a query picks, within the caller's tenant and
/// scope.
fn audit_records(
    core: &Core,
    caller: &Caller,
    query: &AuditQuery,
    records: Vec<AuditRecord>,
) -> Vec<AuditRecord> {
    let mine = crate::core::audit_read::visible(core, caller, records);
    let mut v = query.select(mine);
    if caller.origin != Origin::Tower {
        // The chain's own numbers count every tenant's records.
        for r in &mut v {
            r.seq = 0;
        }
    }
    v
}

/// Every audit record, in sequence order.
pub(crate) fn read_audit(db: &Fetched) -> Result<Vec<AuditRecord>, ApiFault> {
    db.scan(audit::PREFIX)
        .map_err(storage)?
        .iter()
        .map(|(key, value)| {
            decode::<AuditRecord>(key, value)
                .map_err(|err| fault(ApiFaultKind::Tampered, err.to_string()))
        })
        .collect()
}
