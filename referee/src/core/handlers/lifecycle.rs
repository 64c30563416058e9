//! Ways out for the operator when a host is gone or a change must run
//! again: abandon an in-flight change (its outcome on the host is unknown),
//! hold and release a host's queue, retry a finished change as a new one,
//! remove a host for good. Each is audited under the acting operator.
//!
//! An abandoned change leaves the host's queue and the referee's memory: it
//! is never ordered again, and the reports a plug that comes back still
//! sends for it are numbered, consumed and acknowledged like any other
//! (`events.rs` rejects them as `unknown_change` without a gap), so the
//! host's numbering stays whole.

use std::time::Instant;

use vigie_wire::change::{ChangeSpec, StepResult};
use vigie_wire::front::KeyState;
use vigie_wire::tower::{
    ApiAnswer, ApiFault, ApiFaultKind, Caller, ChangeState, ChangeView, StepStatus,
};

use crate::core::audit::AuditAction;
use crate::core::codec::decode;
use crate::core::fetched::Fetched;
use crate::core::model::{change_key, host_key, spec_key, ChangeRecord};
use crate::core::state::Core;
use crate::core::turn::{Log, Turn};

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

fn storage(e: impl std::fmt::Display) -> ApiFault {
    fault(ApiFaultKind::Storage, e.to_string())
}

/// Ends a change that is not final with `state` (cancelled or
/// abandoned), audited as `caller`'s doing, and takes it out of its
/// host's queue.
pub(crate) fn end_change(
    core: &mut Core,
    caller: &Caller,
    id: &str,
    state: ChangeState,
    why: String,
    turn: &mut Turn,
) -> Option<ChangeView> {
    let rec = core.queues_mut().change_mut(id)?;
    rec.view.state = state;
    rec.view.updated_ms = turn.now_ms;
    for s in rec
        .view
        .steps
        .iter_mut()
        .filter(|s| s.status == StepStatus::Pending)
    {
        s.status = StepStatus::Skipped;
    }
    let view = rec.view.clone();
    turn.dirty_change(id, rec.size_bound());
    let (change, host) = (id.to_owned(), view.host.clone());
    turn.logs.push(match state {
        ChangeState::Abandoned => Log::ChangeAbandoned { change, host },
        _ => Log::ChangeCancelled {
            change,
            host,
            tenant: view.tenant.clone(),
        },
    });
    let mut by = view.clone();
    by.operator = caller.operator.clone();
    core.audit(
        turn,
        &by,
        None,
        AuditAction::Ended(state),
        Some(&StepResult::ok(why)),
    );
    core.dequeue(&view.host, view.seq, turn);
    Some(view)
}

/// `vigie abandon ID`: the operator declares the host of an in-flight
/// change lost. `hold` keeps the host's queue from moving on.
pub(crate) fn abandon(
    core: &mut Core,
    caller: &Caller,
    id: &str,
    hold: bool,
    db: &Fetched,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let view = super::changes::find(core, caller, id, db)?;
    if view.state.is_final() {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "change {id} is already {}: nothing to abandon",
                view.state.word()
            ),
        ));
    }
    if view.state == ChangeState::Queued {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!("change {id} is queued, not running: `vigie cancel {id}` takes it out"),
        ));
    }
    let why = format!(
        "abandoned by {} while {} on {}: its outcome on the host is unknown",
        caller.operator,
        view.state.word(),
        view.host
    );
    let view = end_change(core, caller, id, ChangeState::Abandoned, why, turn)
        .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no change {id}")))?;
    if hold {
        set_held(core, caller, &view.host, true, turn);
    }
    core.pump(&view.host, now, turn);
    Ok(ApiAnswer::Changes(vec![view]))
}

fn set_held(core: &mut Core, caller: &Caller, host: &str, held: bool, turn: &mut Turn) {
    let changed = core
        .hosts_mut()
        .get_mut(host)
        .is_some_and(|h| h.set_held(held, turn));
    if !changed {
        return;
    }
    let (action, summary) = if held {
        (
            AuditAction::HostHeld,
            format!("the queue of host {host} is held"),
        )
    } else {
        (
            AuditAction::HostReleased,
            format!("the queue of host {host} moves on"),
        )
    };
    core.audit_host(turn, caller, host, action, summary);
}

/// `vigie hosts release ID`: a held queue moves on.
pub(crate) fn host_release(
    core: &mut Core,
    caller: &Caller,
    host: &str,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    if core.hosts().of_tenant(host, &caller.tenant).is_none() {
        return Err(fault(ApiFaultKind::NotFound, format!("no host {host}")));
    }
    super::scope::check_host(core, caller, host)?;
    set_held(core, caller, host, false, turn);
    core.pump(host, now, turn);
    Ok(ApiAnswer::Done)
}

/// `vigie retry ID`: the finished change's program, submitted again to
/// its host as a new change (audited `retried` on the new one).
pub(crate) fn retry(
    core: &mut Core,
    caller: &Caller,
    id: &str,
    db: &Fetched,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let view = super::changes::find(core, caller, id, db)?;
    if !view.state.is_final() {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "change {id} is {}: only a finished change can be retried",
                view.state.word()
            ),
        ));
    }
    let key = change_key(id);
    let rec: ChangeRecord = match db.get(&key).map_err(storage)? {
        Some(bytes) => decode(&key, bytes).map_err(storage)?,
        // Final in this very turn: stored with it, a moment from now.
        None => {
            return Err(fault(
                ApiFaultKind::Conflict,
                format!("change {id} is finishing: retry in a moment"),
            ))
        }
    };
    let spec: ChangeSpec = match core.queues().program(&rec.spec_id) {
        Some(program) => ChangeSpec::clone(&program.spec),
        None => {
            let sk = spec_key(&rec.spec_id);
            let bytes = db
                .get(&sk)
                .map_err(storage)?
                .ok_or_else(|| storage(format!("the program of change {id} is missing")))?;
            decode(&sk, bytes).map_err(storage)?
        }
    };
    let answer = super::changes::submit(core, caller, spec, &view.host, now, turn)?;
    let new: Vec<ChangeView> = match &answer {
        ApiAnswer::Submitted(views) => views.clone(),
        _ => Vec::new(),
    };
    for v in &new {
        let r = StepResult::ok(format!("retry of {id} ({})", view.state.word()));
        core.audit(turn, v, None, AuditAction::Retried, Some(&r));
    }
    Ok(answer)
}

/// `vigie hosts remove ID`: forgets a host of the caller's tenant and
/// revokes its agent keys. Refused while changes wait for it, unless
/// `force`: then the queued ones are cancelled and the one in flight
/// abandoned, each audited.
pub(crate) fn host_remove(
    core: &mut Core,
    caller: &Caller,
    host: &str,
    force: bool,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    if core.hosts().of_tenant(host, &caller.tenant).is_none() {
        return Err(fault(ApiFaultKind::NotFound, format!("no host {host}")));
    }
    super::scope::check_host(core, caller, host)?;
    let pending: Vec<String> = core
        .queues()
        .queue(host)
        .map(|(_, id)| id.clone())
        .collect();
    if !pending.is_empty() && !force {
        let shown: Vec<&str> = pending.iter().take(10).map(String::as_str).collect();
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "host {host} has {} change(s) not finished ({}): `--force` cancels the \
                 queued ones and abandons the one in flight",
                pending.len(),
                shown.join(", ")
            ),
        ));
    }
    for id in &pending {
        let Some(state) = core.queues().change(id).map(|c| c.view.state) else {
            continue;
        };
        let (end, why) = if state == ChangeState::Queued {
            (
                ChangeState::Cancelled,
                format!("host {host} removed by {}", caller.operator),
            )
        } else {
            (
                ChangeState::Abandoned,
                format!(
                    "host {host} removed by {} while the change was {}: its outcome \
                     on the host is unknown",
                    caller.operator,
                    state.word()
                ),
            )
        };
        end_change(core, caller, id, end, why, turn);
    }
    // The registry in memory: it holds keys added earlier in this turn.
    let live = core.access().live_keys(&caller.tenant, host);
    let mut revoked = 0;
    for mut rec in live {
        rec.state = KeyState::Revoked;
        super::keys::store_key(core, turn, caller, rec, AuditAction::KeyRevoked);
        revoked += 1;
    }
    core.hosts_mut().remove(host);
    core.observed_mut().forget_sample(host);
    core.queues_mut().forget_host(host);
    turn.dirty_hosts.remove(host);
    turn.delete(host_key(host));
    turn.logs.push(Log::HostRemoved {
        host: host.to_owned(),
    });
    let summary = format!(
        "host {host} removed: {} change(s) ended, {revoked} key(s) revoked",
        pending.len()
    );
    core.audit_host(turn, caller, host, AuditAction::HostRemoved, summary);
    super::provision::server_unhosted(core, caller, host, turn);
    Ok(ApiAnswer::Done)
}

/// `vigie cancel ID`: a queued change taken out of its host's queue.
pub(crate) fn cancel(
    core: &mut Core,
    caller: &Caller,
    id: &str,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let view = super::changes::find(core, caller, id, db)?;
    if view.state != ChangeState::Queued {
        let hint = if view.state.is_final() {
            String::new()
        } else {
            format!("; if its host is lost for good, `vigie abandon {id}`")
        };
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "change {id} is {}: only a queued change can be cancelled{hint}",
                view.state.word()
            ),
        ));
    }
    let why = format!("cancelled by {} while queued", caller.operator);
    let view = end_change(core, caller, id, ChangeState::Cancelled, why, turn)
        .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no change {id}")))?;
    Ok(ApiAnswer::Changes(vec![view]))
}
