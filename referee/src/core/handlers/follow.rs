//! A server that joins is served (issue 25 item 4): an environment whose
//! last deploy succeeded and says `follow: true` is deployed again — the
//! same text, the same catalog version, under the name of who deployed
//! it — as soon as a host its `hosts:` selector matches is online and not
//! yet in its inventory. The deploy daemon asks (`DeployCall::Follow`,
//! the tower's only) and the rollouts started here run like any other,
//! recorded and audited (`deploy_started`, saying which hosts joined).
//!
//! Only a last rollout that succeeded is followed: a follow deploy that
//! fails leaves the environment alone until an operator deploys again,
//! never retried in a loop.

use vigie_changes::Selector;
use vigie_deployer::{parse_environment, EnvRecord};
use vigie_wire::deploy::{DeployAnswer, Deployment, Rollout, RolloutEnd};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use super::rollouts::start_rollout;
use crate::core::codec::decode;
use crate::core::fetched::Fetched;
use crate::core::model::{rollout_key, DEPLOY_PREFIX, ROLLOUT_PREFIX};
use crate::core::rollouts::{current, Start};
use crate::core::state::Core;
use crate::core::turn::Turn;

/// An environment to deploy again, and the hosts that joined it.
#[derive(Debug, PartialEq, Eq)]
pub struct Joined {
    pub tenant: String,
    pub app: String,
    pub environment: String,
    pub hosts: Vec<String>,
}

fn storage(e: impl std::fmt::Display) -> ApiFault {
    ApiFault::new(ApiFaultKind::Storage, e.to_string())
}

/// A deployment with its tenant (from its key,
/// `deploy/<tenant>/<app>/<environment>`).
pub type TenantDeployment = (String, Deployment);

/// Every rollout stored, and every deployment with its tenant.
fn stored(db: &Fetched) -> Result<(Vec<Rollout>, Vec<TenantDeployment>), ApiFault> {
    let rollouts = db
        .scan(ROLLOUT_PREFIX.as_bytes())
        .map_err(storage)?
        .iter()
        .map(|(k, v)| decode(k, v).map_err(storage))
        .collect::<Result<_, _>>()?;
    let mut deployments = Vec::new();
    for (k, v) in db.scan(DEPLOY_PREFIX.as_bytes()).map_err(storage)? {
        let d: Deployment = decode(k, v).map_err(storage)?;
        let tenant = String::from_utf8_lossy(k)
            .split('/')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        deployments.push((tenant, d));
    }
    Ok((rollouts, deployments))
}

/// The environments to follow and their new hosts: no I/O, from the
/// rollouts and deployments read and the hosts online now.
pub fn joined(
    core: &Core,
    rollouts: &[Rollout],
    deployments: &[(String, Deployment)],
) -> Vec<Joined> {
    let mut out = Vec::new();
    for r in rollouts
        .iter()
        .filter(|r| r.end == Some(RolloutEnd::Succeeded))
    {
        let Ok(env) = parse_environment(&r.file, &r.text) else {
            continue;
        };
        let Ok(selector) = Selector::parse(&env.hosts) else {
            continue;
        };
        if !env.follow {
            continue;
        }
        let record = deployments
            .iter()
            .find(|(t, d)| *t == r.tenant && d.app == r.app && d.environment == r.environment)
            .and_then(|(_, d)| EnvRecord::from_json(&d.record).ok());
        let Some(record) = record else { continue };
        let hosts: Vec<String> = core
            .hosts()
            .iter()
            .filter(|(id, h)| {
                h.online
                    && h.rec.tenant == r.tenant
                    && selector.matches(id, &h.rec.labels)
                    && !record.hosts.contains_key(*id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        if !hosts.is_empty() {
            out.push(Joined {
                tenant: r.tenant.clone(),
                app: r.app.clone(),
                environment: r.environment.clone(),
                hosts,
            });
        }
    }
    out
}

/// The deploy daemon's `Follow`: starts a rollout for every
/// environment a host joined; answers them.
pub fn follow(core: &mut Core, db: &Fetched, turn: &mut Turn) -> Result<DeployAnswer, ApiFault> {
    let (rollouts, deployments) = stored(db)?;
    let mut started = Vec::new();
    for j in joined(core, &rollouts, &deployments) {
        let Some(last) = rollouts
            .iter()
            .find(|r| (&r.tenant, &r.app, &r.environment) == (&j.tenant, &j.app, &j.environment))
        else {
            continue;
        };
        let by = Caller::internal(&j.tenant, &last.operator);
        let start = Start {
            file: last.file.clone(),
            text: last.text.clone(),
            parallel: last.parallel,
            from_maintenance: false,
            force_unlock: false,
            version: last.version.clone(),
            joined: j.hosts.clone(),
            canary: 0,
        };
        tracing::info!(event = "deploy_followed", tenant = %j.tenant, app = %j.app,
            environment = %j.environment, hosts = %j.hosts.join(","));
        start_rollout(core, &by, start, db, turn)?;
        let key = rollout_key(&j.tenant, &j.app, &j.environment);
        if let Some(bytes) = current(db, turn, &key)? {
            started.push(decode(&key, &bytes).map_err(storage)?);
        }
    }
    Ok(DeployAnswer::Rollouts(started))
}
