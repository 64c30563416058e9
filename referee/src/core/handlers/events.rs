//! Plugs' events: heartbeats (liveness, registration) and reports (the
//! progress of a change, applied exactly once and in order).

use std::time::Instant;

use vigie_wire::change::StepResult;
use vigie_wire::tower::{ChangeState, Labels, PlugEvent, Report, ReportKind, StepStatus, StepView};

use crate::core::audit::AuditAction;
use crate::core::hosts::Incarnation;
use crate::core::model::ChangeRecord;
use crate::core::state::Core;
use crate::core::turn::{Log, Turn};

/// Longest text kept from a plug's report (summaries, output tails): a
/// change record holds every step's result and must stay well under
/// Escalator's value limit.
const MAX_TEXT: usize = 4 * 1024;
/// Most labels a plug may announce, and the longest key or value.
const MAX_LABELS: usize = 64;
const MAX_LABEL_LEN: usize = 256;

fn cut(s: &mut String) {
    if s.len() > MAX_TEXT {
        let mut at = s.len() - MAX_TEXT;
        while !s.is_char_boundary(at) {
            at += 1;
        }
        s.drain(..at);
    }
}

/// Bounds what a report carries, whoever sent it: keeps the last bytes.
pub fn bound(r: &mut Report) {
    if let ReportKind::StepFinished { result, .. } | ReportKind::UndoFinished { result, .. } =
        &mut r.kind
    {
        for s in [
            &mut result.summary,
            &mut result.stdout_tail,
            &mut result.stderr_tail,
        ] {
            cut(s);
        }
        for d in [&mut result.before_digest, &mut result.after_digest]
            .into_iter()
            .flatten()
        {
            d.truncate(128);
        }
    }
}

/// An audit record a report makes: its step, action and result.
type Audited = (Option<u32>, AuditAction, Option<StepResult>);

/// Records a step's result, or its undo's; returns the audit action.
fn record_result(s: &mut StepView, result: &StepResult, undo: bool) -> AuditAction {
    let (status, action) = match (undo, result.ok) {
        (false, true) => (StepStatus::Succeeded, AuditAction::StepApplied),
        (false, false) => (StepStatus::Failed, AuditAction::StepFailed),
        (true, true) => (StepStatus::Undone, AuditAction::StepUndone),
        (true, false) => (StepStatus::UndoFailed, AuditAction::UndoFailed),
    };
    s.status = status;
    let slot = if undo { &mut s.undo } else { &mut s.result };
    *slot = Some(result.clone());
    action
}

fn labels_ok(labels: &Labels) -> bool {
    labels.len() <= MAX_LABELS
        && labels
            .iter()
            .all(|(k, v)| k.len() <= MAX_LABEL_LEN && v.len() <= MAX_LABEL_LEN)
}

/// What a heartbeat says (see `PlugEvent::Heartbeat`).
pub struct Beat<'a> {
    pub incarnation: u64,
    pub labels: Labels,
    pub busy: Option<&'a str>,
    pub refusing: Option<String>,
}

/// Tenant of hosts that register themselves (multi-tenancy comes with the
/// majordomo, which will know the tenant of each agent's key).
pub const DEFAULT_TENANT: &str = "default";

/// A plug's event: a heartbeat, a report (bounded first), a metrics
/// sample, or the answer to a logs request.
pub fn plug_event(core: &mut Core, ev: PlugEvent, now: Instant, turn: &mut Turn) {
    match ev {
        PlugEvent::Heartbeat {
            host,
            incarnation,
            labels,
            busy,
            refusing,
        } => {
            let beat = Beat {
                incarnation,
                labels,
                busy: busy.as_deref(),
                refusing,
            };
            heartbeat(core, &host, beat, now, turn)
        }
        PlugEvent::Report(mut r) => {
            bound(&mut r);
            report(core, r, now, turn)
        }
        PlugEvent::HostMetrics(sample) => super::observe::host_sample(core, sample, now),
        PlugEvent::Logs(chunk) => core.observed_mut().logs_answer(chunk, turn),
    }
}

/// Adopts a plug's newer journal: numbering starts again, and the change
/// it was running, if any, is over — its outcome on the host is unknown.
/// Returns false for a message of an older journal (ignored).
fn adopt_incarnation(core: &mut Core, host: &str, inc: u64, now: Instant, turn: &mut Turn) -> bool {
    let Some(h) = core.hosts_mut().get_mut(host) else {
        return true;
    };
    match h.adopt_incarnation(inc, turn) {
        Incarnation::Older => false,
        Incarnation::Current | Incarnation::First => true,
        Incarnation::Reset => {
            journal_lost(core, host, now, turn);
            true
        }
    }
}

/// The change a host's lost journal was running, if any: over, its
/// outcome on the host unknown.
fn journal_lost(core: &mut Core, host: &str, now: Instant, turn: &mut Turn) {
    let Some(id) = core.queues().head(host).cloned() else {
        return;
    };
    let Some(rec) = core.queues_mut().change_mut(&id) else {
        return;
    };
    match rec.view.state {
        // Never accepted by the old journal: the new plug gets it anew.
        ChangeState::Queued => {}
        ChangeState::Dispatched if !rec.accepted => {}
        _ => {
            rec.view.state = ChangeState::RollbackFailed {
                failed_step: None,
                interrupted: true,
                stopped: false,
            };
            rec.view.updated_ms = turn.now_ms;
            let view = rec.view.clone();
            turn.dirty_change(&id, rec.size_bound());
            turn.logs.push(Log::ChangeFinished {
                change: id,
                host: host.to_owned(),
                state: view.state.word(),
                tenant: view.tenant.clone(),
                took_ms: view.updated_ms.saturating_sub(view.submitted_ms),
            });
            let r = vigie_wire::change::StepResult::failed(
                "the host's journal was lost: outcome unknown",
            );
            core.audit(turn, &view, None, AuditAction::HostReset, Some(&r));
            core.dequeue(host, view.seq, turn);
            core.pump(host, now, turn);
        }
    }
}

pub fn heartbeat(core: &mut Core, host: &str, beat: Beat, now: Instant, turn: &mut Turn) {
    let Beat {
        incarnation,
        labels,
        busy,
        refusing,
    } = beat;
    let refusing = refusing.map(|mut r| {
        cut(&mut r);
        r
    });
    if vigie_changes::validate_host_id(host).is_err() || !labels_ok(&labels) {
        tracing::warn!(event = "heartbeat_rejected", host);
        return;
    }
    if !core.hosts().contains(host) {
        if core.access().host_has_key(host) {
            // A remote host removed by its tenant: a beat its agent sent
            // before the front door learnt of the revocation must not
            // bring it back (in another tenant, at that).
            tracing::info!(event = "heartbeat_ignored", host, reason = "removed");
            return;
        }
        // Labels are the tower's to give (operators, setup rules),
        // never the host's: what it announces is only "reported".
        super::host_labels::new_host(core, DEFAULT_TENANT, host, Labels::new(), turn);
    }
    let Some(h) = core.hosts_mut().get_mut(host) else {
        return;
    };
    h.reported = labels;
    if incarnation == 0 {
        issue_incarnation(core, host, turn);
        return;
    }
    h.last_seen = Some(now);
    if !adopt_incarnation(core, host, incarnation, now, turn) {
        return;
    }
    beat_alive(core, host, refusing, busy, now, turn);
}

/// A plug with a new journal: hand it the next incarnation (again, if
/// the first hand-out was lost). It is not online before it uses it.
fn issue_incarnation(core: &mut Core, host: &str, turn: &mut Turn) {
    if let Some(h) = core.hosts_mut().get_mut(host) {
        h.issue_incarnation(turn);
    }
}

/// A beat of the host's current incarnation: its refusal, coming
/// online, and the change it says it runs.
fn beat_alive(
    core: &mut Core,
    host: &str,
    refusing: Option<String>,
    busy: Option<&str>,
    now: Instant,
    turn: &mut Turn,
) {
    let Some(h) = core.hosts_mut().get_mut(host) else {
        return;
    };
    if h.set_refusing(refusing, turn) {
        core.pump(host, now, turn);
    }
    let Some(h) = core.hosts_mut().get_mut(host) else {
        return;
    };
    if h.set_online(turn) {
        core.pump(host, now, turn);
    }
    // A plug running the head change has it, whether or not its
    // `Accepted` report got through: no need to send the order again.
    if let Some(busy) = busy {
        if let Some(rec) = core.queues_mut().change_mut(busy) {
            if rec.view.host == host && rec.view.state == ChangeState::Dispatched && !rec.accepted {
                rec.accepted = true;
                turn.dirty_change(busy, rec.size_bound());
            }
        }
    }
}

pub fn report(core: &mut Core, r: Report, now: Instant, turn: &mut Turn) {
    let reject = |turn: &mut Turn, reason| {
        turn.logs.push(Log::ReportRejected {
            host: r.host.clone(),
            seq: r.seq,
            reason,
        })
    };
    if !core.hosts().contains(&r.host) {
        return reject(turn, "unknown_host");
    }
    if !adopt_incarnation(core, &r.host, r.incarnation, now, turn) {
        return reject(turn, "old_incarnation");
    }
    let Some(h) = core.hosts_mut().get_mut(&r.host) else {
        return;
    };
    match h.take_report(r.seq, turn) {
        Ok(true) => {}
        Ok(false) => return,
        Err(reason) => return reject(turn, reason),
    }
    let Some(rec) = core.queues_mut().change_mut(&r.change) else {
        return reject(turn, "unknown_change");
    };
    if rec.view.host != r.host || rec.view.state == ChangeState::Queued {
        return reject(turn, "not_in_flight");
    }
    let audit = match apply(rec, r.kind, (&r.host, &r.change), turn) {
        Ok(audit) => audit,
        Err(reason) => return reject(turn, reason),
    };
    let view = rec.view.clone();
    // Its record grows by this report's result within the turn: that
    // much is counted by the audit record below, which holds it too.
    turn.dirty_change(&view.id, rec.size_bound());
    if let Some((step, action, result)) = audit {
        let mut result = result;
        if action == AuditAction::Finished {
            result = Some(vigie_wire::change::StepResult::ok(view.state.word()));
        }
        core.audit(turn, &view, step, action, result.as_ref());
    }
    if view.state.is_final() {
        core.dequeue(&view.host, view.seq, turn);
        core.pump(&view.host, now, turn);
    }
}

/// What one in-order report of a change in flight does to its record;
/// the audit record it makes, or why it is rejected.
fn apply(
    rec: &mut ChangeRecord,
    kind: ReportKind,
    (host, change): (&str, &str),
    turn: &mut Turn,
) -> Result<Option<Audited>, &'static str> {
    let (host, change) = (host.to_owned(), change.to_owned());
    let view = &mut rec.view;
    view.updated_ms = turn.now_ms;
    let step_ok = |step: u32, n: usize| (step as usize) < n;
    let mut audit = None;
    match kind {
        ReportKind::Accepted => {
            rec.accepted = true;
            turn.logs.push(Log::ChangeAccepted { change, host });
        }
        ReportKind::StepStarted { step } if step_ok(step, view.steps.len()) => {
            view.state = ChangeState::Running { step };
            view.steps[step as usize].status = StepStatus::Running;
            turn.logs.push(Log::StepStarted { change, host, step });
        }
        ReportKind::StepFinished { step, result } if step_ok(step, view.steps.len()) => {
            let action = record_result(&mut view.steps[step as usize], &result, false);
            turn.logs.push(Log::StepResult {
                change,
                host,
                step,
                undo: false,
                ok: result.ok,
                summary: result.summary.clone(),
                kind: view.steps[step as usize].kind.clone(),
            });
            audit = Some((Some(step), action, Some(result)));
        }
        ReportKind::UndoStarted { step } if step_ok(step, view.steps.len()) => {
            view.state = ChangeState::RollingBack { step };
            view.steps[step as usize].status = StepStatus::Undoing;
        }
        ReportKind::UndoFinished { step, result } if step_ok(step, view.steps.len()) => {
            let action = record_result(&mut view.steps[step as usize], &result, true);
            turn.logs.push(Log::StepResult {
                change,
                host,
                step,
                undo: true,
                ok: result.ok,
                summary: result.summary.clone(),
                kind: view.steps[step as usize].kind.clone(),
            });
            audit = Some((Some(step), action, Some(result)));
        }
        ReportKind::Finished { outcome } => {
            view.state = outcome.into();
            for s in view
                .steps
                .iter_mut()
                .filter(|s| s.status == StepStatus::Pending)
            {
                s.status = StepStatus::Skipped;
            }
            turn.logs.push(Log::ChangeFinished {
                change,
                host,
                state: view.state.word(),
                tenant: view.tenant.clone(),
                took_ms: view.updated_ms.saturating_sub(view.submitted_ms),
            });
            audit = Some((None, AuditAction::Finished, None));
        }
        _ => return Err("bad_step_index"),
    }
    Ok(audit)
}
