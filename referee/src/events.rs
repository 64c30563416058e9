//! Plugs' events: heartbeats (liveness, registration) and reports (the
//! progress of a change, applied exactly once and in order).

use std::time::Instant;

use vigie_wire::tower::{ChangeState, Labels, Report, ReportKind, StepStatus};

use crate::model::HostRecord;
use crate::tower::{now_ms, HostState, Tower};
use crate::turn::{Log, Turn};

/// Tenant of hosts that register themselves (multi-tenancy comes with the
/// majordomo, which will know the tenant of each agent's key).
pub const DEFAULT_TENANT: &str = "default";

impl Tower {
    pub fn heartbeat(&mut self, host: &str, labels: Labels, now: Instant, turn: &mut Turn) {
        if vigie_changes::validate_host_id(host).is_err() {
            return;
        }
        let h = self.hosts.entry(host.to_owned()).or_insert_with(|| {
            turn.logs.push(Log::HostRegistered {
                host: host.to_owned(),
            });
            turn.dirty_hosts.insert(host.to_owned());
            HostState::new(HostRecord {
                id: host.to_owned(),
                tenant: DEFAULT_TENANT.to_owned(),
                labels: labels.clone(),
                report_seq: 0,
            })
        });
        if h.rec.labels != labels && !labels.is_empty() {
            h.rec.labels = labels;
            turn.dirty_hosts.insert(host.to_owned());
        }
        h.last_seen = Some(now);
        if !h.online {
            h.online = true;
            turn.logs.push(Log::HostOnline {
                host: host.to_owned(),
            });
            self.pump(host, now, turn);
        }
    }

    pub fn report(&mut self, r: Report, now: Instant, turn: &mut Turn) {
        let reject = |turn: &mut Turn, reason| {
            turn.logs.push(Log::ReportRejected {
                host: r.host.clone(),
                seq: r.seq,
                reason,
            })
        };
        let Some(h) = self.hosts.get_mut(&r.host) else {
            return reject(turn, "unknown_host");
        };
        if r.seq <= h.rec.report_seq {
            // Already applied: the plug missed our acknowledgement.
            turn.acks.insert(r.host.clone());
            return;
        }
        if r.seq != h.rec.report_seq + 1 {
            // A gap: the plug resends everything unacknowledged, in order.
            return reject(turn, "out_of_order");
        }
        h.rec.report_seq = r.seq;
        turn.dirty_hosts.insert(r.host.clone());
        turn.acks.insert(r.host.clone());
        let Some(rec) = self.changes.get_mut(&r.change) else {
            return reject(turn, "unknown_change");
        };
        if rec.view.host != r.host {
            return reject(turn, "wrong_host");
        }
        let (host, change) = (r.host.clone(), r.change.clone());
        let view = &mut rec.view;
        view.updated_ms = now_ms();
        let step_ok = |step: u32, n: usize| (step as usize) < n;
        let mut audit = None;
        match r.kind {
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
                let s = &mut view.steps[step as usize];
                s.status = if result.ok {
                    StepStatus::Succeeded
                } else {
                    StepStatus::Failed
                };
                let action = if result.ok {
                    "step_applied"
                } else {
                    "step_failed"
                };
                turn.logs.push(Log::StepFinished {
                    change,
                    host,
                    step,
                    ok: result.ok,
                    summary: result.summary.clone(),
                });
                s.result = Some(result.clone());
                audit = Some((Some(step), action, Some(result)));
            }
            ReportKind::UndoStarted { step } if step_ok(step, view.steps.len()) => {
                view.state = ChangeState::RollingBack { step };
                view.steps[step as usize].status = StepStatus::Undoing;
            }
            ReportKind::UndoFinished { step, result } if step_ok(step, view.steps.len()) => {
                let s = &mut view.steps[step as usize];
                s.status = if result.ok {
                    StepStatus::Undone
                } else {
                    StepStatus::UndoFailed
                };
                let action = if result.ok {
                    "step_undone"
                } else {
                    "undo_failed"
                };
                turn.logs.push(Log::StepUndone {
                    change,
                    host,
                    step,
                    ok: result.ok,
                    summary: result.summary.clone(),
                });
                s.undo = Some(result.clone());
                audit = Some((Some(step), action, Some(result)));
            }
            ReportKind::Finished { outcome } => {
                view.state = outcome.into();
                turn.logs.push(Log::ChangeFinished {
                    change,
                    host,
                    state: view.state.word(),
                });
                audit = Some((None, "finished", None));
            }
            _ => return reject(turn, "bad_step_index"),
        }
        let view = view.clone();
        turn.dirty_changes.insert(view.id.clone());
        if let Some((step, action, result)) = audit {
            let mut result = result;
            if action == "finished" {
                result = Some(vigie_wire::change::StepResult::ok(view.state.word()));
            }
            self.audit(turn, &view, step, action, result.as_ref());
        }
        if view.state.is_final() {
            self.dequeue(&view.host, view.seq, turn);
            self.pump(&view.host, now, turn);
        }
    }
}
