//! Many simulated hosts in one thread: plugs with the noop driver and an
//! in-memory journal behind one SUB and one PUSH socket. For benchmarks of
//! the tower, not of hosts.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_drivers::NoopDriver;
use vigie_wire::tower::{host_topic, Labels, PlugEvent, Published};

use crate::error::PlugError;
use crate::journal::MemJournal;
use crate::plug::Plug;
use crate::runner::{drain_published, push_socket, send, sub_socket, PlugConfig};

#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub plug: PlugConfig,
    /// Host ids are `<prefix><n>`, n from 1.
    pub prefix: String,
    pub hosts: usize,
    pub labels: Labels,
    pub stash: PathBuf,
}

pub fn run_fleet(cfg: FleetConfig, shutdown: Arc<AtomicBool>) -> Result<(), PlugError> {
    let ctx = zmq::Context::new();
    let sub = sub_socket(&ctx, &cfg.plug.orders)?;
    let push = push_socket(&ctx, &cfg.plug.events)?;
    let mut plugs: HashMap<String, Plug> = HashMap::with_capacity(cfg.hosts);
    for n in 1..=cfg.hosts {
        let host = format!("{}{n}", cfg.prefix);
        sub.set_subscribe(&host_topic(&host))?;
        let plug = Plug::new(
            &host,
            cfg.labels.clone(),
            Box::new(NoopDriver),
            Box::new(MemJournal::default()),
            &cfg.stash.join(&host),
        )
        .without_stash_dirs();
        plugs.insert(host, plug);
    }
    let mut out = |ev: PlugEvent| send(&push, &ev);
    for p in plugs.values_mut() {
        p.recover(&mut out)?;
    }
    let mut next_beat = Instant::now();
    tracing::info!(event = "fleet_started", hosts = cfg.hosts, prefix = %cfg.prefix);
    while !shutdown.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= next_beat {
            for p in plugs.values() {
                out(p.heartbeat());
            }
            next_beat = now + cfg.plug.heartbeat;
        }
        let wait = next_beat
            .saturating_duration_since(now)
            .min(Duration::from_millis(100));
        match sub.poll(zmq::POLLIN, i64::try_from(wait.as_millis()).unwrap_or(100)) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        drain_published(&sub, |p| match p {
            Published::Order(order) => match plugs.get_mut(&order.host) {
                Some(p) => p.on_order(order, &mut out),
                None => Ok(()),
            },
            Published::ReportAck { host, upto } => match plugs.get_mut(&host) {
                Some(p) => p.on_ack(upto),
                None => Ok(()),
            },
            Published::Incarnation { host, incarnation } => match plugs.get_mut(&host) {
                Some(p) => p.on_incarnation(&host, incarnation).map(|_| ()),
                None => Ok(()),
            },
            _ => Ok(()),
        })?;
        let now = Instant::now();
        for p in plugs.values_mut() {
            p.tick(now, &mut out);
        }
    }
    Ok(())
}
