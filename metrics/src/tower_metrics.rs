//! The registry and its metrics. `observe` moves counters and histograms
//! for one event; `set_snapshot` replaces the scrape-time gauges. Neither
//! does I/O. Names follow Prometheus's conventions: the `vigie_` prefix,
//! base units (seconds, bytes), `_total` counters; the only id used as a
//! label is `host`, on per-host series.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::host_series::HostLabels;
use crate::observed::Observed;
use crate::snapshot::Snapshot;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChangeLabels {
    pub state: String,
    pub tenant: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StepLabels {
    pub kind: String,
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    pub verb: String,
    pub outcome: String,
}

/// A launcher child: `host` is empty (absent) except for a host's plug.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChildLabels {
    pub child: String,
    pub host: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChildStateLabels {
    pub child: String,
    pub host: String,
    pub state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

/// The single-valued scrape-time series: constants encoded on each
/// scrape from the last snapshot, and absent when their source did not
/// answer (a plain gauge could only show a stale value or a false zero).
#[derive(Debug, Default)]
struct SnapshotSeries(Arc<Mutex<Snapshot>>);

impl Collector for SnapshotSeries {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(f) = &s.fleet {
            let g = ConstGauge::new(i64::try_from(f.queued).unwrap_or(i64::MAX));
            let m = encoder.encode_descriptor(
                "queue_depth",
                "Changes not final, over every host",
                None,
                g.metric_type(),
            )?;
            g.encode(m)?;
        }
        if let Some(b) = s.database_bytes {
            let g = ConstGauge::new(i64::try_from(b).unwrap_or(i64::MAX));
            let m = encoder.encode_descriptor(
                "escalator_database",
                "Bytes of Escalator's LevelDB files on disk",
                Some(&Unit::Bytes),
                g.metric_type(),
            )?;
            g.encode(m)?;
        }
        crate::host_series::encode(&s.host_samples, &mut encoder)?;
        let Some(e) = s.escalator else {
            return Ok(());
        };
        crate::host_series::encode_histogram(
            "escalator_commit",
            "How long each fdatasync turn of Escalator took",
            Some(&Unit::Seconds),
            &e.commit_us,
            1e-6,
            &mut encoder,
        )?;
        crate::host_series::encode_histogram(
            "escalator_commit_writes",
            "Durable writes covered by each fdatasync (the group-commit size)",
            None,
            &e.commit_writes,
            1.0,
            &mut encoder,
        )?;
        let rows = [
            (
                "escalator_requests",
                "Requests Escalator answered since it started",
                e.requests,
            ),
            (
                "escalator_durable_writes",
                "Durable writes (fdatasync'ed before their reply)",
                e.durable_writes,
            ),
            (
                "escalator_fdatasyncs",
                "fdatasync calls; durable_writes / fdatasyncs is the group-commit size",
                e.syncs,
            ),
            (
                "escalator_errors",
                "Requests answered with an error",
                e.errors,
            ),
        ];
        for (name, help, v) in rows {
            let c = ConstCounter::new(v);
            let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            c.encode(m)?;
        }
        Ok(())
    }
}

/// Every metric of the tower, in one explicit registry.
#[derive(Debug)]
pub struct TowerMetrics {
    registry: Registry,
    changes: Family<ChangeLabels, Counter>,
    dispatch_latency: Histogram,
    change_duration: Histogram,
    steps: Family<StepLabels, Counter>,
    rollbacks: Family<OutcomeLabels, Counter>,
    handshakes_refused: Counter,
    agents_connected: Gauge,
    calls: Family<CallLabels, Counter>,
    child_restarts: Family<ChildLabels, Counter>,
    child_state: Family<ChildStateLabels, Gauge>,
    events: Counter,
    // Scrape-time gauges.
    referee_up: Gauge,
    hosts: Family<StateLabels, Gauge>,
    queue_deepest: Family<HostLabels, Gauge>,
    escalator_up: Gauge,
    snapshot: Arc<Mutex<Snapshot>>,
    /// Tenants seen in events: whose hosts the snapshot asks for.
    tenants: Mutex<BTreeSet<String>>,
}

fn seconds_buckets() -> Histogram {
    // 1 ms to about 65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for TowerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl TowerMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("vigie");
        let m = Self {
            changes: Family::default(),
            dispatch_latency: seconds_buckets(),
            change_duration: seconds_buckets(),
            steps: Family::default(),
            rollbacks: Family::default(),
            handshakes_refused: Counter::default(),
            agents_connected: Gauge::default(),
            calls: Family::default(),
            child_restarts: Family::default(),
            child_state: Family::default(),
            events: Counter::default(),
            referee_up: Gauge::default(),
            hosts: Family::default(),
            queue_deepest: Family::default(),
            escalator_up: Gauge::default(),
            snapshot: Arc::default(),
            tenants: Mutex::new(BTreeSet::from([vigie_wire::ids::TOWER_TENANT.to_owned()])),
            registry: Registry::default(),
        };
        m.register_changes(&mut registry);
        m.register_tower(&mut registry);
        m.zeros_from_start();
        registry.register_collector(Box::new(SnapshotSeries(m.snapshot.clone())));
        Self { registry, ..m }
    }

    /// Series that would exist only once non-zero, exported at 0 from
    /// the start (a Grafana panel over them shows 0, not "No data"; a
    /// `rate` or `increase` sees their first event): rollbacks by
    /// outcome, changes by state for each tenant known (the others once
    /// their tenant is seen, `remember_tenant`), and each child's
    /// restarts once its state is known (`child_states`).
    fn zeros_from_start(&self) {
        for outcome in crate::observed::ROLLBACK_OUTCOMES {
            let _ = self.rollbacks.get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            });
        }
        for tenant in self.tenants() {
            self.changes_at_zero(&tenant);
        }
    }

    fn changes_at_zero(&self, tenant: &str) {
        for state in crate::observed::CHANGE_STATES {
            let _ = self.changes.get_or_create(&ChangeLabels {
                state: state.into(),
                tenant: tenant.into(),
            });
        }
    }

    /// The series of changes and their steps.
    fn register_changes(&self, r: &mut Registry) {
        r.register(
            "changes",
            "Changes that entered a state: queued at submission, then their final state",
            self.changes.clone(),
        );
        r.register_with_unit(
            "dispatch_latency",
            "From a change's submission to its order's first sending",
            Unit::Seconds,
            self.dispatch_latency.clone(),
        );
        r.register_with_unit(
            "change_duration",
            "From a change's submission to its final state",
            Unit::Seconds,
            self.change_duration.clone(),
        );
        r.register(
            "steps",
            "Steps and undos that ended, by step kind and outcome",
            self.steps.clone(),
        );
        r.register(
            "rollbacks",
            "Changes that ended in a rollback: rolled_back or rollback_failed",
            self.rollbacks.clone(),
        );
    }

    /// The series of the tower's daemons: the door, the launcher's
    /// children, the referee and Escalator.
    fn register_tower(&self, r: &mut Registry) {
        r.register(
            "handshakes_refused",
            "CURVE handshakes the majordomo refused (unknown, pending or revoked keys)",
            self.handshakes_refused.clone(),
        );
        r.register(
            "agents_connected",
            "Remote agents the majordomo relays for",
            self.agents_connected.clone(),
        );
        r.register(
            "calls",
            "Operators' calls at the front door, by verb and outcome (forbidden included)",
            self.calls.clone(),
        );
        r.register(
            "child_restarts",
            "Children the launcher restarted after a crash",
            self.child_restarts.clone(),
        );
        r.register(
            "child_state",
            "Each child of the launcher: 1 for the state it is in (running, starting, backing_off, stopped), 0 for the others",
            self.child_state.clone(),
        );
        r.register(
            "metrics_events",
            "Lifecycle events that moved a metric",
            self.events.clone(),
        );
        r.register(
            "referee_up",
            "1 when the referee answered this scrape; 0 and no host or queue series otherwise",
            self.referee_up.clone(),
        );
        r.register(
            "hosts",
            "Hosts known to the tower, by state (online, offline)",
            self.hosts.clone(),
        );
        r.register(
            "queue_deepest",
            "The deepest host queue (changes not final), labelled with its host",
            self.queue_deepest.clone(),
        );
        r.register(
            "escalator_up",
            "1 when Escalator answered this scrape",
            self.escalator_up.clone(),
        );
    }

    /// Counts one event.
    pub fn observe(&self, o: &Observed) {
        self.events.inc();
        match o {
            Observed::Change {
                state,
                tenant,
                took,
            } => {
                self.remember_tenant(tenant);
                self.changes
                    .get_or_create(&ChangeLabels {
                        state: state.clone(),
                        tenant: tenant.clone(),
                    })
                    .inc();
                if let Some(t) = took {
                    self.change_duration.observe(*t);
                }
                if matches!(state.as_str(), "rolled_back" | "rollback_failed") {
                    self.rollbacks
                        .get_or_create(&OutcomeLabels {
                            outcome: state.clone(),
                        })
                        .inc();
                }
            }
            Observed::Dispatched { waited } => self.dispatch_latency.observe(*waited),
            Observed::Step { kind, outcome } => {
                self.steps
                    .get_or_create(&StepLabels {
                        kind: kind.clone(),
                        outcome: outcome.word().into(),
                    })
                    .inc();
            }
            Observed::HandshakesRefused { count } => {
                self.handshakes_refused.inc_by(*count);
            }
            Observed::AgentConnected => {
                self.agents_connected.inc();
            }
            Observed::AgentCut => {
                if self.agents_connected.get() > 0 {
                    self.agents_connected.dec();
                }
            }
            Observed::MajordomoStarted => {
                self.agents_connected.set(0);
            }
            Observed::Call { verb, outcome } => {
                self.calls
                    .get_or_create(&CallLabels {
                        verb: verb.clone(),
                        outcome: outcome.clone(),
                    })
                    .inc();
            }
            Observed::ChildRestarted { child, host } => {
                self.child_restarts
                    .get_or_create(&ChildLabels {
                        child: child.clone(),
                        host: host.clone(),
                    })
                    .inc();
            }
            Observed::ChildStates(states) => self.child_states(states),
            Observed::Tenant { tenant } => self.remember_tenant(tenant),
        }
    }

    /// Every daemon's state gauge: 1 for the state it is in, 0 for the
    /// others, so a state left is never reported still held.
    fn child_states(&self, states: &[(String, String, &'static str)]) {
        for (child, host, now) in states {
            let _ = self.child_restarts.get_or_create(&ChildLabels {
                child: child.clone(),
                host: host.clone(),
            });
            for state in crate::observed::CHILD_STATES {
                let labels = ChildStateLabels {
                    child: child.clone(),
                    host: host.clone(),
                    state: state.to_owned(),
                };
                self.child_state
                    .get_or_create(&labels)
                    .set(i64::from(state == *now));
            }
        }
    }

    fn remember_tenant(&self, tenant: &str) {
        let mut t = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if !t.contains(tenant) {
            t.insert(tenant.to_owned());
            drop(t);
            self.changes_at_zero(tenant);
        }
    }

    /// The tenants whose hosts a snapshot should list.
    pub fn tenants(&self) -> Vec<String> {
        let t = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        t.iter().cloned().collect()
    }

    /// Replaces the scrape-time gauges. A part the snapshot could not read
    /// is removed, so a scrape never shows an old value as current.
    pub fn set_snapshot(&self, s: &Snapshot) {
        self.hosts.clear();
        self.queue_deepest.clear();

        match &s.fleet {
            Some(f) => {
                self.referee_up.set(1);
                for (state, n) in [("online", f.online), ("offline", f.offline)] {
                    self.hosts
                        .get_or_create(&StateLabels {
                            state: state.into(),
                        })
                        .set(i64::try_from(n).unwrap_or(i64::MAX));
                }
                if let Some((host, depth)) = &f.deepest {
                    self.queue_deepest
                        .get_or_create(&HostLabels { host: host.clone() })
                        .set(i64::from(*depth));
                }
            }
            None => {
                self.referee_up.set(0);
            }
        }
        self.escalator_up.set(i64::from(s.escalator.is_some()));
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = s.clone();
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::parse;
    use crate::snapshot::Fleet;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn events_become_counters_with_base_units_and_total_suffix() {
        let m = TowerMetrics::new();
        for (name, f) in [
            ("change_queued", r#"{"tenant":"acme"}"#),
            (
                "change_finished",
                r#"{"state":"succeeded","tenant":"acme","took_ms":40}"#,
            ),
            (
                "change_finished",
                r#"{"state":"rolled_back","tenant":"acme","took_ms":40}"#,
            ),
            ("change_dispatched", r#"{"resent":false,"waited_ms":3}"#),
            ("step_failed", r#"{"kind":"run"}"#),
            ("call_forbidden", r#"{"verb":"changes.submit"}"#),
        ] {
            if let Some(o) = parse(name, f) {
                m.observe(&o);
            }
        }
        let t = m.encode().unwrap_or_default();
        assert!(
            line(
                &t,
                r#"vigie_changes_total{state="succeeded",tenant="acme"} 1"#
            )
            .is_some(),
            "{t}"
        );
        assert!(line(&t, r#"vigie_rollbacks_total{outcome="rolled_back"} 1"#).is_some());
        assert!(line(&t, r#"vigie_steps_total{kind="run",outcome="failed"} 1"#).is_some());
        assert!(line(
            &t,
            r#"vigie_calls_total{verb="changes.submit",outcome="forbidden"} 1"#
        )
        .is_some());
        assert!(
            line(&t, "vigie_dispatch_latency_seconds_count 1").is_some(),
            "{t}"
        );
        assert!(line(&t, "vigie_change_duration_seconds_count 2").is_some());
    }

    /// Issue 19: what the dashboard's Rollbacks, Changes and Child
    /// restarts panels query exists at 0 before its first event.
    #[test]
    fn rare_series_are_exported_at_zero_before_their_first_event() {
        let m = TowerMetrics::new();
        let t = m.encode().unwrap_or_default();
        for want in [
            r#"vigie_rollbacks_total{outcome="rolled_back"} 0"#,
            r#"vigie_rollbacks_total{outcome="rollback_failed"} 0"#,
            r#"vigie_changes_total{state="queued",tenant="default"} 0"#,
            r#"vigie_changes_total{state="cancelled",tenant="default"} 0"#,
        ] {
            assert!(line(&t, want).is_some(), "{want} not in:\n{t}");
        }
        let health = r#"{"at_ms":1,"daemons":[{"name":"plug:h","state":"running","since_ms":1,"restarts":0,"last_exit":null,"last_exit_ms":null}]}"#;
        let tenant = r#"{"tenant":"acme"}"#;
        for (name, f) in [("tower_health", health), ("change_queued", tenant)] {
            if let Some(o) = parse(name, f) {
                m.observe(&o);
            }
        }
        let t = m.encode().unwrap_or_default();
        for want in [
            r#"vigie_child_restarts_total{child="plug",host="h"} 0"#,
            r#"vigie_changes_total{state="queued",tenant="acme"} 1"#,
            r#"vigie_changes_total{state="rolled_back",tenant="acme"} 0"#,
        ] {
            assert!(line(&t, want).is_some(), "{want} not in:\n{t}");
        }
    }

    #[test]
    fn an_unreadable_referee_drops_its_series_instead_of_keeping_old_values() {
        let m = TowerMetrics::new();
        m.set_snapshot(&Snapshot {
            fleet: Some(Fleet {
                online: 2,
                offline: 1,
                queued: 7,
                deepest: Some(("web-1".into(), 5)),
            }),
            escalator: None,
            database_bytes: None,
            host_samples: Vec::new(),
        });
        let t = m.encode().unwrap_or_default();
        assert!(
            line(&t, r#"vigie_hosts{state="online"} 2"#).is_some(),
            "{t}"
        );
        assert!(line(&t, "vigie_queue_depth 7").is_some(), "{t}");
        assert!(line(&t, r#"vigie_queue_deepest{host="web-1"} 5"#).is_some());
        assert!(line(&t, "vigie_referee_up 1").is_some());
        m.set_snapshot(&Snapshot::default());
        let t = m.encode().unwrap_or_default();
        assert!(line(&t, "vigie_referee_up 0").is_some(), "{t}");
        for gone in ["vigie_hosts{", "vigie_queue_depth ", "vigie_queue_deepest{"] {
            assert!(line(&t, gone).is_none(), "{gone} still in:\n{t}");
        }
    }
}

#[cfg(test)]
fn sample(host: &str) -> vigie_wire::observe::HostSample {
    vigie_wire::observe::HostSample {
        host: host.into(),
        interval_ms: 10_000,
        cpus: 2,
        cpu_busy_ms: 1_500,
        load_centi: [52, 100, 3],
        memory_total_bytes: 4096,
        memory_available_bytes: 1024,
        disk_total_bytes: 8192,
        disk_available_bytes: 2048,
        uptime_ms: 90_000,
        services: vec![vigie_wire::observe::ServiceState {
            name: "auto-shop-prod-web".into(),
            instance: "1".into(),
            replica: "1".into(),
            running: true,
        }],
        replica_restarts: 2,
        replicas_given_up: 1,
        ..Default::default()
    }
}

#[cfg(test)]
fn escalator_with_histograms() -> vigie_wire::escalator::Stats {
    let mut commit_us = vigie_wire::escalator::Histogram::with_bounds(&[1_000, 10_000]);
    commit_us.observe(500);
    commit_us.observe(5_000);
    let mut commit_writes = vigie_wire::escalator::Histogram::with_bounds(&[1, 8]);
    commit_writes.observe(1);
    commit_writes.observe(20);
    vigie_wire::escalator::Stats {
        commit_us,
        commit_writes,
        ..Default::default()
    }
}

#[cfg(test)]
mod host_and_commit_series {
    use super::*;

    fn line<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
        text.lines().find(|l| l.starts_with(prefix))
    }

    #[test]
    fn host_samples_are_exported_per_host_and_absent_without_one() {
        let m = TowerMetrics::new();
        m.set_snapshot(&Snapshot {
            fleet: Some(Default::default()),
            escalator: Some(escalator_with_histograms()),
            database_bytes: None,
            host_samples: vec![sample("web-1")],
        });
        let t = m.encode().unwrap_or_default();
        for want in [
            r#"vigie_host_load1{host="web-1"} 0.52"#,
            r#"vigie_host_memory_available_bytes{host="web-1"} 1024"#,
            r#"vigie_host_disk_total_bytes{host="web-1"} 8192"#,
            r#"vigie_host_cpu_busy_seconds_total{host="web-1"} 1.5"#,
            r#"vigie_host_uptime_seconds{host="web-1"} 90"#,
            r#"vigie_host_services_running{host="web-1"} 1"#,
            r#"vigie_host_replica_restarts_total{host="web-1"} 2"#,
            r#"vigie_host_replicas_given_up_total{host="web-1"} 1"#,
            r#"vigie_escalator_commit_seconds_bucket{le="0.001"} 1"#,
            r#"vigie_escalator_commit_seconds_bucket{le="+Inf"} 2"#,
            "vigie_escalator_commit_seconds_count 2",
            r#"vigie_escalator_commit_writes_bucket{le="8.0"} 1"#,
            r#"vigie_escalator_commit_writes_bucket{le="+Inf"} 2"#,
        ] {
            assert!(line(&t, want).is_some(), "{want} not in:\n{t}");
        }
        // The next scrape has no current sample (stale, or the referee
        // restarted): no host series at all, not the old values.
        m.set_snapshot(&Snapshot {
            fleet: Some(Default::default()),
            ..Snapshot::default()
        });
        let t = m.encode().unwrap_or_default();
        assert!(line(&t, "vigie_host_").is_none(), "{t}");
    }
}

#[cfg(test)]
mod dashboard {
    use super::*;
    use crate::observed::parse;
    use crate::snapshot::Fleet;

    /// Every series the shipped Grafana dashboard queries is one this
    /// daemon exports (a renamed metric would leave a panel empty).
    #[test]
    fn the_grafana_dashboard_queries_only_exported_series() {
        let m = TowerMetrics::new();
        for (name, f) in [
            (
                "change_finished",
                r#"{"state":"rolled_back","tenant":"t","took_ms":1}"#,
            ),
            ("step_failed", r#"{"kind":"run"}"#),
            ("call_answered", r#"{"verb":"hosts.read","outcome":"ok"}"#),
            ("child_restarted", r#"{"name":"referee"}"#),
            (
                "tower_health",
                r#"{"at_ms":1,"daemons":[{"name":"plug:h","state":"running","since_ms":1,"restarts":0,"last_exit":null,"last_exit_ms":null}]}"#,
            ),
        ] {
            if let Some(o) = parse(name, f) {
                m.observe(&o);
            }
        }
        m.set_snapshot(&Snapshot {
            fleet: Some(Fleet {
                deepest: Some(("h".into(), 1)),
                ..Fleet::default()
            }),
            escalator: Some(escalator_with_histograms()),
            database_bytes: Some(1),
            host_samples: vec![sample("h")],
        });
        let exposed = m.encode().unwrap_or_default();
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../examples/grafana/vigie-tower.json"
        );
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let dash: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let mut exprs = Vec::new();
        for p in dash["panels"].as_array().into_iter().flatten() {
            for t in p["targets"].as_array().into_iter().flatten() {
                exprs.extend(t["expr"].as_str().map(str::to_owned));
            }
        }
        assert!(exprs.len() > 10, "no queries read from {path}");
        for e in &exprs {
            for (i, _) in e.match_indices("vigie_") {
                let name: String = e[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                assert!(
                    exposed.lines().any(|l| l.starts_with(&format!("{name} "))
                        || l.starts_with(&format!("{name}{{"))),
                    "{name} (in {e}) is not exported:\n{exposed}"
                );
            }
        }
    }
}
