//! The provisioner daemon's loop: every `poll` it asks the referee for
//! the servers in `provisioning` (all tenants; at start that resumes the
//! work a stopped tower left), and runs each in its own thread, at most
//! `parallel` at a time. Polling was chosen over a subscription to the
//! referee's PUB: a list read is exact after any restart or lost
//! message, costs the referee one in-memory scan, and a request waits at
//! most one interval.

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};
use vigie_client::{calls, ApiClient};
use vigie_wire::catalog::ServerRecord;
use vigie_wire::tower::Caller;

use crate::error::ProvisionError;
use crate::job::{self, Context, OPERATOR};

#[derive(Debug, Clone)]
pub struct ProvisionerConfig {
    pub ctx: Context,
    /// Servers provisioned at once.
    pub parallel: usize,
    /// How often the referee is asked for new work.
    pub poll: Duration,
}

fn waiting(client: &mut ApiClient) -> Result<Vec<ServerRecord>, ProvisionError> {
    Ok(client.ask(calls::catalog::Provisioning)?)
}

/// Runs until `shutdown`; jobs in flight are left to finish or to be
/// resumed at the next start (a server stays `provisioning` until its
/// attempt ends).
pub fn run(cfg: ProvisionerConfig, shutdown: Arc<AtomicBool>) -> Result<(), ProvisionError> {
    let mut client = ApiClient::direct(
        &cfg.ctx.api,
        &cfg.ctx.orders,
        Caller::internal(vigie_wire::ids::TOWER_TENANT, OPERATOR),
    )?;
    client.set_timeout(Duration::from_secs(5));
    let parallel = cfg.parallel.max(1);
    info!(
        event = "provisioner_started",
        parallel,
        tower = cfg.ctx.tower.as_deref().unwrap_or("")
    );
    let (tx, rx) = mpsc::channel::<String>();
    let mut running: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<ServerRecord> = VecDeque::new();
    let mut next_poll = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        if Instant::now() >= next_poll {
            next_poll = Instant::now() + cfg.poll;
            match waiting(&mut client) {
                Ok(list) => {
                    for s in list {
                        let name = &s.spec.name;
                        if !running.contains(name) && !queue.iter().any(|q| q.spec.name == *name) {
                            queue.push_back(s);
                        }
                    }
                }
                Err(e) => warn!(event = "provisioner_poll_failed", error = %e),
            }
        }
        while running.len() < parallel {
            let Some(s) = queue.pop_front() else { break };
            running.insert(s.spec.name.clone());
            let (ctx, tx) = (cfg.ctx.clone(), tx.clone());
            std::thread::spawn(move || {
                let name = s.spec.name.clone();
                if let Err(e) = job::provision(&ctx, &s) {
                    warn!(event = "provision_error", server = %name, error = %e);
                }
                let _ = tx.send(name);
            });
        }
        let wait = next_poll
            .saturating_duration_since(Instant::now())
            .min(Duration::from_millis(200));
        match rx.recv_timeout(wait) {
            Ok(done) => {
                running.remove(&done);
                // A finished server may free a slot for one already listed;
                // what is still `provisioning` shows at the next poll.
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    info!(event = "provisioner_stopped", running = running.len());
    Ok(())
}
