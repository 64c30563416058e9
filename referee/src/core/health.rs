//! The tower's own health as the referee knows it: the launcher's latest
//! snapshot of every daemon's state (`tower_health` on the lifecycle
//! socket, sent again to each new subscriber, so a restarted referee
//! learns it at once). It answers `vigie tower status`, says why a host's
//! plug does not serve in `vigie hosts`, and refuses a request that needs
//! a daemon that is down rather than accept it to wait in silence.
//!
//! The tower's daemons are shown to whoever may read hosts; a plug is a
//! host, shown only to a caller of its tenant whose scope covers it.

use vigie_wire::lifecycle::{DaemonState, LifecycleEvent, TowerHealth, HEALTH_TOPIC};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller};

use crate::core::scope::Visible;
use crate::core::tower::Tower;
use crate::shell::clock::now_ms;

impl Tower {
    /// `ApiCall::TowerStatus`.
    pub(crate) fn tower_status(&self, caller: &Caller) -> Result<ApiAnswer, ApiFault> {
        let Some(h) = &self.health else {
            return Err(ApiFault::new(
                ApiFaultKind::Unavailable,
                "the referee has no news of the launcher yet (a tower run without \
                 `vigie start` has none)",
            ));
        };
        let vis = Visible::of(caller);
        let daemons = h
            .daemons
            .iter()
            .filter(|d| match d.host() {
                None => true,
                // A plug of a host the tower does not know is nobody's to see.
                Some(id) => self
                    .hosts
                    .get(id)
                    .is_some_and(|host| vis.host(&host.rec.tenant, id, &host.rec.labels)),
            })
            .cloned()
            .collect();
        Ok(ApiAnswer::TowerStatus(TowerHealth {
            at_ms: h.at_ms,
            daemons,
        }))
    }

    /// Why the launcher's plug of `host` does not serve, if it has one
    /// and it does not.
    pub(crate) fn plug_down(&self, host: &str) -> Option<String> {
        let name = format!("plug:{host}");
        let d = self.health.as_ref()?.get(&name)?;
        d.down_reason(now_ms()).map(|r| format!("plug {r}"))
    }

    /// Refuses a request that needs the daemon `name` while its launcher
    /// says it is not running (nothing is known without a launcher: the
    /// request is accepted as before).
    pub(crate) fn needs_daemon(&self, name: &str, what: &str) -> Result<(), ApiFault> {
        let Some(d) = self.health.as_ref().and_then(|h| h.get(name)) else {
            return Ok(());
        };
        if !matches!(
            d.state,
            DaemonState::BackingOff { .. } | DaemonState::Stopped
        ) {
            return Ok(());
        }
        let why = d.down_reason(now_ms()).unwrap_or_default();
        Err(ApiFault::new(
            ApiFaultKind::Unavailable,
            format!(
                "the {name} is down ({why}): {what} was not done; \
                 `vigie tower status` shows when it runs again"
            ),
        ))
    }

    /// Takes a lifecycle event: only the health snapshot matters here.
    pub(crate) fn lifecycle_event(&mut self, ev: &LifecycleEvent) {
        if ev.name != HEALTH_TOPIC {
            return;
        }
        match serde_json::from_str::<TowerHealth>(&ev.fields_json) {
            // Snapshots arrive in order on one socket; the latest wins.
            Ok(h) => self.health = Some(h),
            Err(e) => tracing::warn!(event = "health_rejected", reason = %e),
        }
    }
}

#[cfg(test)]
mod tests {
    use vigie_wire::lifecycle::DaemonHealth;

    use super::*;

    fn daemon(name: &str, state: DaemonState) -> DaemonHealth {
        DaemonHealth {
            name: name.into(),
            state,
            since_ms: 1,
            restarts: 7,
            last_exit: Some("exit 1".into()),
            last_exit_ms: Some(1),
        }
    }

    #[test]
    fn a_down_daemon_refuses_what_needs_it_and_a_running_one_does_not() {
        let store = crate::shell::test_store::store();
        let mut t = store.tower();
        assert!(t.needs_daemon("provisioner", "x").is_ok(), "no launcher");
        let until_ms = now_ms() + 120_000;
        let snapshot = TowerHealth {
            at_ms: 1,
            daemons: vec![daemon("provisioner", DaemonState::BackingOff { until_ms })],
        };
        t.lifecycle_event(&LifecycleEvent {
            source: "launcher".into(),
            name: HEALTH_TOPIC.into(),
            fields_json: serde_json::to_string(&snapshot).unwrap(),
        });
        let f = t.needs_daemon("provisioner", "provisioning").unwrap_err();
        assert_eq!(f.kind, ApiFaultKind::Unavailable);
        assert!(f.message.contains("exit 1, next try in"), "{}", f.message);
        t.health = Some(TowerHealth {
            at_ms: 2,
            daemons: vec![daemon("provisioner", DaemonState::Running)],
        });
        assert!(t.needs_daemon("provisioner", "x").is_ok());
    }
}
