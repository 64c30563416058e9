//! What a plug or agent does besides changes: samples the host's metrics
//! every `metrics_every` (`PlugEvent::HostMetrics`, the first at once),
//! copies the services' output into the log store every two seconds, and
//! answers the referee's logs requests from the store; a sample also
//! says what the health watch (`heal`) did, at once when it acts. No sockets here:
//! the plug's runner drives it from a thread of its own, the agent from
//! the thread that owns its DEALER (not the plug's): logs and metrics
//! flow while a step runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_wire::observe::{LogSource, LogsChunk, LogsRequest};
use vigie_wire::tower::PlugEvent;

use crate::collect::Collector;
use crate::logs::LogStore;

/// How often the services' output is copied into the store.
const COLLECT_EVERY: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct ObserverConfig {
    /// The host's root (its filesystem, its deployed services).
    pub root: PathBuf,
    pub logs: Arc<LogStore>,
    pub metrics_every: Duration,
    /// What the health watch did (`heal`), told in every sample.
    pub heal: Arc<crate::heal::HealStats>,
}

impl std::fmt::Debug for ObserverConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObserverConfig")
            .field("root", &self.root)
            .field("logs", &self.logs.dir())
            .field("metrics_every", &self.metrics_every)
            .field("heal", &self.heal)
            .finish()
    }
}

pub struct Observer {
    host: String,
    cfg: ObserverConfig,
    collector: Collector,
    next_sample: Instant,
    next_collect: Instant,
}

impl Observer {
    pub fn new(host: &str, cfg: ObserverConfig) -> Self {
        let now = Instant::now();
        Self {
            host: host.to_owned(),
            collector: Collector::new(&cfg.root, &cfg.logs),
            cfg,
            next_sample: now,
            next_collect: now,
        }
    }

    /// Does what is due; returns a metrics sample when one is.
    pub fn tick(&mut self, now: Instant) -> Option<PlugEvent> {
        if now >= self.next_collect {
            self.collector.collect(&self.cfg.logs);
            self.next_collect = now + COLLECT_EVERY;
        }
        // A restart or a replica given up is told at once.
        let healed = self.cfg.heal.take_changed();
        if now < self.next_sample && !healed {
            return None;
        }
        self.next_sample = now + self.cfg.metrics_every;
        let every = u64::try_from(self.cfg.metrics_every.as_millis()).unwrap_or(u64::MAX);
        let mut sample = crate::host_metrics::sample(&self.host, &self.cfg.root, every);
        sample.replica_restarts = self.cfg.heal.restarts();
        sample.replicas_given_up = self.cfg.heal.given_up();
        if healed {
            tracing::info!(event = "host_sample_sent", host = %self.host, replica_restarts = sample.replica_restarts, replicas_given_up = sample.replicas_given_up);
        }
        Some(PlugEvent::HostMetrics(sample))
    }

    /// The answer to a logs request for this host (`None`: not ours).
    pub fn answer(&mut self, req: LogsRequest) -> Option<PlugEvent> {
        if req.query.host != self.host {
            return None;
        }
        if matches!(req.query.source, LogSource::Service { .. }) {
            // What the services printed up to now, not two seconds ago.
            self.collector.collect(&self.cfg.logs);
        }
        let body = self.cfg.logs.read(&req.query);
        tracing::debug!(event = "logs_answered", host = %self.host, request = req.request, ok = body.is_ok());
        Some(PlugEvent::Logs(LogsChunk {
            host: self.host.clone(),
            request: req.request,
            body,
        }))
    }
}
