//! What a plug's heartbeat says, shared between the thread that runs the
//! plug (it keeps the snapshot current) and the thread that sends the
//! beats (it must not wait for a step to end). No I/O.

use std::sync::{Arc, Mutex};

use vigie_wire::tower::{PlugEvent, ReportKind};

use crate::plug::{Plug, STOPPING};

/// The last heartbeat the plug's thread published for the beating thread.
#[derive(Clone)]
pub struct HeartbeatSnapshot(Arc<Mutex<PlugEvent>>);

impl HeartbeatSnapshot {
    /// Taken after recovery: the beats then carry the journal's incarnation.
    pub fn new(plug: &Plug) -> Self {
        Self(Arc::new(Mutex::new(plug.heartbeat())))
    }

    /// What the plug says of itself now (between two orders).
    pub fn refresh(&self, plug: &Plug) {
        self.set(plug.heartbeat());
    }

    fn set(&self, ev: PlugEvent) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = ev;
    }

    /// Follows a report on its way out: busy once the plug journaled and
    /// sent `Accepted`, idle once `Finished`. A heartbeat naming a change
    /// the journal does not hold would stop the referee from sending its
    /// order again.
    pub fn follow(&self, ev: &PlugEvent) {
        let PlugEvent::Report(r) = ev else {
            return;
        };
        let now = match r.kind {
            ReportKind::Accepted => Some(r.change.clone()),
            ReportKind::Finished { .. } => None,
            _ => return,
        };
        let mut b = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let PlugEvent::Heartbeat { busy, .. } = &mut *b {
            *busy = now;
        }
    }

    /// A change runs on the host (from `Accepted` to `Finished`).
    pub fn busy(&self) -> bool {
        matches!(
            &*self.0.lock().unwrap_or_else(|p| p.into_inner()),
            PlugEvent::Heartbeat { busy: Some(_), .. }
        )
    }

    /// The heartbeat to send now; `stopping` (SIGTERM) is said at once,
    /// even while a step runs, unless the plug already refuses for its
    /// own reason.
    pub fn beat(&self, stopping: bool) -> PlugEvent {
        let mut ev = self.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let PlugEvent::Heartbeat { refusing, .. } = &mut ev {
            if refusing.is_none() && stopping {
                *refusing = Some(STOPPING.to_owned());
            }
        }
        ev
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_wire::tower::{Outcome, Report};

    fn snapshot(refusing: Option<&str>) -> HeartbeatSnapshot {
        HeartbeatSnapshot(Arc::new(Mutex::new(PlugEvent::Heartbeat {
            host: "h".into(),
            incarnation: 1,
            labels: Default::default(),
            busy: None,
            refusing: refusing.map(str::to_owned),
        })))
    }

    fn report(kind: ReportKind) -> PlugEvent {
        PlugEvent::Report(Report {
            host: "h".into(),
            incarnation: 1,
            seq: 1,
            change: "c1".into(),
            at_ms: 0,
            kind,
        })
    }

    fn said(ev: &PlugEvent) -> (Option<String>, Option<String>) {
        match ev {
            PlugEvent::Heartbeat { busy, refusing, .. } => (busy.clone(), refusing.clone()),
            other => panic!("not a heartbeat: {other:?}"),
        }
    }

    #[test]
    fn busy_from_accepted_to_finished_and_stopping_said_at_once() {
        let s = snapshot(None);
        s.follow(&report(ReportKind::Accepted));
        assert_eq!(said(&s.beat(false)), (Some("c1".into()), None));
        assert_eq!(
            said(&s.beat(true)),
            (Some("c1".into()), Some(STOPPING.into()))
        );
        s.follow(&report(ReportKind::Finished {
            outcome: Outcome::Succeeded,
        }));
        assert_eq!(said(&s.beat(false)), (None, None));
        // The plug's own reason is not hidden by "stopping".
        let full = snapshot(Some("disk full"));
        assert_eq!(said(&full.beat(true)).1.as_deref(), Some("disk full"));
    }
}
