//! The events the metrics are made of, read from the lifecycle stream
//! into types. No I/O: `parse` is tested alone. An event this module does
//! not know, or one missing a field, is `None` — it is not counted rather
//! than counted wrong.

use serde_json::{Map, Value};
use vigie_wire::lifecycle::{DaemonState, TowerHealth};

/// How a step (or its undo) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    Succeeded,
    Failed,
    Undone,
    UndoFailed,
}

impl StepOutcome {
    pub fn word(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Undone => "undone",
            Self::UndoFailed => "undo_failed",
        }
    }
}

/// One event that moves a metric.
#[derive(Debug, Clone, PartialEq)]
pub enum Observed {
    /// A change entered a state: `queued` at submission, then its final
    /// state (`succeeded`, `rolled_back`, `rollback_failed`, `cancelled`).
    Change {
        state: String,
        tenant: String,
        /// Seconds since submission, for final states.
        took: Option<f64>,
    },
    /// A change's order was sent for the first time (not a resend).
    Dispatched {
        waited: f64,
    },
    Step {
        kind: String,
        outcome: StepOutcome,
    },
    HandshakesRefused {
        count: u64,
    },
    AgentConnected,
    AgentCut,
    /// The majordomo (re)started: it knows no agent.
    MajordomoStarted,
    Call {
        verb: String,
        outcome: String,
    },
    /// A child of the launcher; `host` when it is a host's plug.
    ChildRestarted {
        child: String,
        host: String,
    },
    /// The launcher's snapshot: each child (and host, for a plug) with
    /// its state word (`running`, `starting`, `backing_off`, `stopped`).
    ChildStates(Vec<(String, String, &'static str)>),
    /// An operator was changed: its tenant may have hosts.
    Tenant {
        tenant: String,
    },
}

fn text(f: &Map<String, Value>, k: &str) -> Option<String> {
    f.get(k).and_then(Value::as_str).map(str::to_owned)
}

fn ms(f: &Map<String, Value>, k: &str) -> Option<f64> {
    f.get(k).and_then(Value::as_u64).map(|v| v as f64 / 1000.0)
}

/// `plug:web-1` is child `plug` of host `web-1`; others have no host.
/// The values of the `state` label of `vigie_changes_total`: each is
/// exported at 0 for every tenant known, before its first change.
pub const CHANGE_STATES: [&str; 5] = [
    "queued",
    "succeeded",
    "rolled_back",
    "rollback_failed",
    "cancelled",
];

/// The values of the `outcome` label of `vigie_rollbacks_total`.
pub const ROLLBACK_OUTCOMES: [&str; 2] = ["rolled_back", "rollback_failed"];

/// The values of the `state` label of `vigie_child_state`.
pub const CHILD_STATES: [&str; 4] = ["running", "starting", "backing_off", "stopped"];

fn state_word(s: DaemonState) -> &'static str {
    match s {
        DaemonState::Running => CHILD_STATES[0],
        DaemonState::Starting => CHILD_STATES[1],
        DaemonState::BackingOff { .. } => CHILD_STATES[2],
        DaemonState::Stopped => CHILD_STATES[3],
    }
}

fn child_of(f: &Map<String, Value>) -> Option<(String, String)> {
    let name = text(f, "name")?;
    Some(match name.split_once(':') {
        Some((child, host)) => (child.to_owned(), host.to_owned()),
        None => (name, String::new()),
    })
}

/// Reads one lifecycle event (its name and JSON fields).
pub fn parse(name: &str, fields_json: &str) -> Option<Observed> {
    let Ok(Value::Object(f)) = serde_json::from_str::<Value>(fields_json) else {
        return None;
    };
    let step = |outcome| {
        Some(Observed::Step {
            kind: text(&f, "kind")?,
            outcome,
        })
    };
    match name {
        "change_queued" => Some(Observed::Change {
            state: "queued".into(),
            tenant: text(&f, "tenant")?,
            took: None,
        }),
        "change_finished" => Some(Observed::Change {
            state: text(&f, "state")?,
            tenant: text(&f, "tenant")?,
            took: ms(&f, "took_ms"),
        }),
        "change_cancelled" => Some(Observed::Change {
            state: "cancelled".into(),
            tenant: text(&f, "tenant")?,
            took: None,
        }),
        "change_dispatched" => match f.get("resent").and_then(Value::as_bool) {
            Some(false) => Some(Observed::Dispatched {
                waited: ms(&f, "waited_ms")?,
            }),
            _ => None,
        },
        "step_succeeded" => step(StepOutcome::Succeeded),
        "step_failed" => step(StepOutcome::Failed),
        "step_undone" => step(StepOutcome::Undone),
        "undo_failed" => step(StepOutcome::UndoFailed),
        // Logged a few times per address and window...
        "handshake_refused" => Some(Observed::HandshakesRefused { count: 1 }),
        // ...then counted: together they are every refusal.
        "handshakes_refused" => Some(Observed::HandshakesRefused {
            count: f.get("suppressed").and_then(Value::as_u64)?,
        }),
        "agent_connected" => Some(Observed::AgentConnected),
        "agent_cut" => Some(Observed::AgentCut),
        "majordomo_started" => Some(Observed::MajordomoStarted),
        "call_answered" => Some(Observed::Call {
            verb: text(&f, "verb")?,
            outcome: text(&f, "outcome")?,
        }),
        "call_forbidden" => Some(Observed::Call {
            verb: text(&f, "verb")?,
            outcome: "forbidden".into(),
        }),
        "child_restarted" => {
            let (child, host) = child_of(&f)?;
            Some(Observed::ChildRestarted { child, host })
        }
        vigie_wire::lifecycle::HEALTH_TOPIC => {
            let h: TowerHealth = serde_json::from_value(Value::Object(f)).ok()?;
            let states = h.daemons.iter().map(|d| {
                let mut m = Map::new();
                m.insert("name".into(), Value::String(d.name.clone()));
                let (child, host) = child_of(&m)?;
                Some((child, host, state_word(d.state)))
            });
            Some(Observed::ChildStates(states.collect::<Option<_>>()?))
        }
        "operator_changed" => Some(Observed::Tenant {
            tenant: text(&f, "tenant")?,
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_states_carry_tenant_and_duration() {
        let o = parse(
            "change_finished",
            r#"{"change":"c1","host":"web-1","state":"rolled_back","tenant":"acme","took_ms":1500}"#,
        );
        assert_eq!(
            o,
            Some(Observed::Change {
                state: "rolled_back".into(),
                tenant: "acme".into(),
                took: Some(1.5)
            })
        );
    }

    #[test]
    fn a_resent_order_is_not_a_dispatch() {
        let first = r#"{"resent":false,"waited_ms":20}"#;
        assert_eq!(
            parse("change_dispatched", first),
            Some(Observed::Dispatched { waited: 0.02 })
        );
        assert_eq!(
            parse("change_dispatched", r#"{"resent":true,"waited_ms":9000}"#),
            None
        );
    }

    #[test]
    fn plugs_are_labelled_by_host_other_children_are_not() {
        assert_eq!(
            parse("child_restarted", r#"{"name":"plug:web-1","attempt":1}"#),
            Some(Observed::ChildRestarted {
                child: "plug".into(),
                host: "web-1".into()
            })
        );
        let health = r#"{"at_ms":1,"daemons":[
            {"name":"referee","state":"running","since_ms":1,"restarts":0,
             "last_exit":null,"last_exit_ms":null},
            {"name":"plug:web-1","state":{"backing_off":{"until_ms":9}},"since_ms":1,
             "restarts":3,"last_exit":"exit 1","last_exit_ms":1}]}"#;
        assert_eq!(
            parse("tower_health", health),
            Some(Observed::ChildStates(vec![
                ("referee".into(), String::new(), "running"),
                ("plug".into(), "web-1".into(), "backing_off"),
            ]))
        );
    }

    #[test]
    fn unknown_or_incomplete_events_are_not_counted() {
        assert_eq!(parse("step_started", r#"{"step":0}"#), None);
        assert_eq!(parse("change_queued", r#"{"change":"c1"}"#), None);
        assert_eq!(parse("change_queued", "not json"), None);
        assert_eq!(
            parse("handshakes_refused", r#"{"suppressed":12,"sources":3}"#),
            Some(Observed::HandshakesRefused { count: 12 })
        );
    }
}
