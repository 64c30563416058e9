//! The change calls: submit (a program queued on the hosts its target
//! names, one change per host), status and queue (a queued change's
//! view says what it waits for), and finding a change of the caller's
//! tenant wherever it lives now (queued, recent, or in history).

use std::sync::Arc;
use std::time::Instant;

use vigie_changes::Selector;
use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{
    ApiAnswer, ApiFault, ApiFaultKind, Caller, ChangeState, ChangeView, StepView, Waiting,
};

use crate::core::audit::AuditAction;
use crate::core::codec::decode;
use crate::core::fetched::Fetched;
use crate::core::model::{change_id, change_key, spec_key, ChangeRecord};
use crate::core::scope::Visible;
use crate::core::state::{Core, HostState};
use crate::core::submission::MAX_SUBMIT_HOSTS;
use crate::core::turn::{Log, Turn};

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

fn storage(e: impl std::fmt::Display) -> ApiFault {
    fault(ApiFaultKind::Storage, e.to_string())
}

/// What every change of one submission shares.
#[derive(Clone, Copy)]
struct Queued<'a> {
    spec: &'a ChangeSpec,
    steps: &'a [StepView],
    spec_id: &'a str,
    /// A bound on one change record's size (`Turn::dirty_change`).
    record: usize,
}

/// `vigie submit`: the program queued on every host its target names,
/// one change per host, the whole submission checked before anything
/// is stored.
pub(crate) fn submit(
    core: &mut Core,
    caller: &Caller,
    spec: ChangeSpec,
    target: &str,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    crate::core::submission::check_shape(&spec)?;
    let matched = submit_targets(core, caller, target)?;
    let spec = super::secrets::seal_secrets(core, caller, spec, &matched)?;
    let crate::core::submission::Sized {
        steps,
        spec_bytes,
        record,
    } = crate::core::submission::check(&spec, &caller.tenant, &caller.operator, &matched)?;
    crate::core::submission::check_changes_share(
        core.hosts(),
        core.queues(),
        core.limits(),
        &caller.tenant,
        matched.len(),
    )?;
    // One copy of the program for the whole submission.
    let spec_id = change_id(core.queues().next_seq());
    let program = crate::core::queues::Program {
        spec: Arc::new(spec.clone()),
        users: matched.len(),
        bytes: spec_bytes.len(),
    };
    turn.put(spec_key(&spec_id), spec_bytes);
    core.queues_mut().add_program(spec_id.clone(), program);
    let mut views = Vec::with_capacity(matched.len());
    let queued = Queued {
        spec: &spec,
        steps: &steps,
        spec_id: &spec_id,
        record,
    };
    for host in matched {
        let view = enqueue(core, caller, &host, &queued, turn);
        views.push((host, view));
    }
    core.persist_next_seq(turn);
    for (host, _) in &views {
        core.pump(host, now, turn);
    }
    Ok(ApiAnswer::Submitted(
        views
            .into_iter()
            .map(|(_, v)| with_waiting(core, v))
            .collect(),
    ))
}

/// The hosts of the caller's tenant a submission's target names, all
/// inside the caller's scope and at most `MAX_SUBMIT_HOSTS`.
fn submit_targets(core: &Core, caller: &Caller, target: &str) -> Result<Vec<String>, ApiFault> {
    let selector =
        Selector::parse(target).map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
    let mine = |h: &&HostState| h.rec.tenant == caller.tenant;
    if let Some(ids) = selector.exact_ids() {
        let unknown: Vec<&str> = ids
            .iter()
            .filter(|id| core.hosts().of_tenant(id, &caller.tenant).is_none())
            .map(String::as_str)
            .collect();
        if !unknown.is_empty() {
            return Err(fault(
                ApiFaultKind::NotFound,
                format!("unknown host(s): {}", unknown.join(", ")),
            ));
        }
    }
    let matched: Vec<String> = core
        .hosts()
        .values()
        .filter(mine)
        .filter(|h| selector.matches(&h.rec.id, &h.rec.labels))
        .map(|h| h.rec.id.clone())
        .collect();
    if matched.is_empty() {
        return Err(fault(
            ApiFaultKind::NotFound,
            format!("target {target:?} matches no host"),
        ));
    }
    let vis = Visible::of(caller);
    let outside: Vec<&str> = matched
        .iter()
        .filter(|h| !super::scope::host_visible(core, &vis, h))
        .map(String::as_str)
        .take(20)
        .collect();
    if !outside.is_empty() {
        return Err(fault(
            ApiFaultKind::Forbidden,
            format!(
                "operator {} may not submit to: {}",
                caller.operator,
                outside.join(", ")
            ),
        ));
    }
    if matched.len() > MAX_SUBMIT_HOSTS {
        return Err(fault(
            ApiFaultKind::Invalid,
            format!(
                "target {target:?} matches {} hosts: at most {MAX_SUBMIT_HOSTS} per submission",
                matched.len()
            ),
        ));
    }
    Ok(matched)
}

/// One change of a submission queued on `host`, audited `submitted`.
fn enqueue(
    core: &mut Core,
    caller: &Caller,
    host: &str,
    program: &Queued,
    turn: &mut Turn,
) -> ChangeView {
    let Queued {
        spec,
        steps,
        spec_id,
        record,
    } = *program;
    let seq = core.queues_mut().take_seq();
    let id = change_id(seq);
    let view = ChangeView {
        id: id.clone(),
        host: host.to_owned(),
        seq,
        tenant: caller.tenant.clone(),
        operator: caller.operator.clone(),
        title: spec.title.clone(),
        state: ChangeState::Queued,
        steps: steps.to_vec(),
        submitted_ms: turn.now_ms,
        updated_ms: turn.now_ms,
        waiting: None,
    };
    core.audit(turn, &view, None, AuditAction::Submitted, None);
    turn.logs.push(Log::ChangeQueued {
        change: id.clone(),
        host: host.to_owned(),
        seq,
        tenant: view.tenant.clone(),
    });
    turn.dirty_change(&id, record);
    let rec = ChangeRecord {
        view: view.clone(),
        accepted: false,
        spec_id: spec_id.to_owned(),
    };
    core.queues_mut().enqueue(rec, turn);
    view
}

/// `Status` of each of `changes`, in one answer (a fault if any one
/// is not the caller's to read).
pub(crate) fn status_of(
    core: &Core,
    caller: &Caller,
    changes: &[vigie_wire::tower::ChangeId],
    db: &Fetched,
) -> Result<ApiAnswer, ApiFault> {
    let max = vigie_wire::limits::MAX_STATUS_OF;
    if changes.len() > max {
        return Err(fault(
            ApiFaultKind::Invalid,
            format!("at most {max} changes in one status call"),
        ));
    }
    changes
        .iter()
        .map(|id| Ok(with_waiting(core, find(core, caller, id, db)?)))
        .collect::<Result<_, ApiFault>>()
        .map(ApiAnswer::Changes)
}

/// A queued change's view, saying what it waits for: its host offline
/// or held, or changes ahead of it.
pub(crate) fn with_waiting(core: &Core, mut v: ChangeView) -> ChangeView {
    v.waiting = None;
    if v.state != ChangeState::Queued {
        return v;
    }
    let Some(h) = core.hosts().get(&v.host) else {
        return v;
    };
    let ahead = core.queues().ahead(&v.host, v.seq);
    v.waiting = Some(if h.rec.held {
        Waiting::HostHeld
    } else if !h.online {
        Waiting::HostOffline
    } else {
        Waiting::Behind {
            ahead: u32::try_from(ahead).unwrap_or(u32::MAX),
        }
    });
    if matches!(v.waiting, Some(Waiting::Behind { ahead: 0 })) {
        // Next in line on an online host: about to be dispatched.
        v.waiting = None;
    }
    v
}

/// A change of the caller's tenant, wherever it lives now.
pub(crate) fn find(
    core: &Core,
    caller: &Caller,
    id: &str,
    db: &Fetched,
) -> Result<ChangeView, ApiFault> {
    let view = if let Some(rec) = core.queues().change(id) {
        Some(rec.view.clone())
    } else if let Some(v) = core.queues().recent().iter().rev().find(|v| v.id == id) {
        Some(v.clone())
    } else {
        let key = change_key(id);
        match db.get(&key).map_err(storage)? {
            Some(bytes) => Some(decode::<ChangeRecord>(&key, bytes).map_err(storage)?.view),
            None => None,
        }
    };
    let view = view
        .filter(|v| v.tenant == caller.tenant)
        .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no change {id}")))?;
    super::scope::check_host(core, caller, &view.host)?;
    Ok(view)
}

/// The caller's changes still in progress and the most recently
/// finished ones, oldest first, at most `limit`.
pub(crate) fn latest(core: &Core, caller: &Caller, limit: u32) -> Vec<ChangeView> {
    let mut v: Vec<ChangeView> = core
        .queues()
        .changes()
        .map(|c| c.view.clone())
        .chain(core.queues().recent().iter().cloned())
        .filter(|v| v.tenant == caller.tenant)
        .collect();
    let vis = Visible::of(caller);
    v.retain(|c| super::scope::host_visible(core, &vis, &c.host));
    v.sort_by_key(|v| v.seq);
    let skip = v.len().saturating_sub(limit as usize);
    v.drain(..skip);
    v
}

/// The changes in a host's queue, first in line first.
pub(crate) fn queue(core: &Core, caller: &Caller, host: &str) -> Result<ApiAnswer, ApiFault> {
    let h = core
        .hosts()
        .of_tenant(host, &caller.tenant)
        .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no host {host}")))?;
    super::scope::check_host(core, caller, host)?;
    let v = core
        .queues()
        .queue(&h.rec.id)
        .filter_map(|(_, id)| core.queues().change(id))
        .map(|c| with_waiting(core, c.view.clone()))
        .collect();
    Ok(ApiAnswer::Changes(v))
}
