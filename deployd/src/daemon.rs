//! The deploy daemon's loop: every `poll` it asks the referee for the
//! rollouts not ended (every tenant's; at start that resumes what a
//! stopped daemon left), takes each new one over, and ticks every one it
//! holds. Polling, like the provisioner: a list read is exact after any
//! restart or lost message, and a deploy waits at most one interval.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};
use vigie_client::ApiClient;
use vigie_wire::deploy::{DeployAnswer, DeployCall, Rollout};
use vigie_wire::tower::{ApiAnswer, ApiCall, Caller};

use crate::driver::{client_for, Driver, Tick};
use crate::error::DeploydError;

/// The name the daemon's own calls are made under.
pub const OPERATOR: &str = "deployd";

/// How often the referee is asked whether hosts joined environments
/// that follow them (each ask reads every rollout and deployment).
const FOLLOW_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct DeploydConfig {
    pub api: String,
    pub orders: String,
    /// How often the referee is asked for rollouts and changes.
    pub poll: Duration,
}

fn open_rollouts(client: &mut ApiClient) -> Result<Vec<Rollout>, DeploydError> {
    match client.call(ApiCall::Deploy(DeployCall::Rollouts))? {
        ApiAnswer::Deploy(DeployAnswer::Rollouts(all)) => Ok(all),
        other => Err(DeploydError::Unexpected(format!("{other:?}"))),
    }
}

/// Runs until `shutdown`. A rollout in flight is simply left: its state
/// is in the referee, and the next start resumes it.
pub fn run(cfg: DeploydConfig, shutdown: Arc<AtomicBool>) -> Result<(), DeploydError> {
    let caller = Caller::internal(vigie_wire::ids::TOWER_TENANT, OPERATOR);
    let mut client = ApiClient::direct(&cfg.api, &cfg.orders, caller)?;
    client.set_timeout(Duration::from_secs(5));
    info!(
        event = "deployd_started",
        poll_ms = cfg.poll.as_millis() as u64
    );
    let mut drivers: BTreeMap<String, Driver> = BTreeMap::new();
    let mut followed = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        let started = Instant::now();
        // Hosts that joined a `follow: true` environment: the referee
        // starts their deploys, picked up below like any other.
        if followed.elapsed() >= FOLLOW_EVERY {
            followed = Instant::now();
            if let Err(e) = client.call(ApiCall::Deploy(DeployCall::Follow)) {
                warn!(event = "deployd_follow_failed", error = %e);
            }
        }
        match open_rollouts(&mut client) {
            Ok(list) => {
                for r in list {
                    if let Some(d) = drivers.get_mut(&r.id) {
                        d.command(&r);
                        continue;
                    }
                    match client_for(&cfg.api, &cfg.orders, &r) {
                        Ok(c) => {
                            drivers.insert(r.id.clone(), Driver::take(&r, c));
                        }
                        Err(e) => {
                            warn!(event = "rollout_client_failed", rollout = %r.id, error = %e)
                        }
                    }
                }
            }
            Err(e) => warn!(event = "deployd_poll_failed", error = %e),
        }
        drivers.retain(|_, d| d.tick() == Tick::Going);
        let wait = cfg.poll.saturating_sub(started.elapsed());
        std::thread::sleep(wait.max(Duration::from_millis(10)));
    }
    info!(event = "deployd_stopped", rollouts = drivers.len());
    Ok(())
}
