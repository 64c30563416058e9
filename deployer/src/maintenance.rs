//! Deploys with pending migrations (seed 003, "avec migrations"): old and
//! new code never run against the same schema, so the environment goes
//! into maintenance on every host before the migrations run once.
//!
//! `migration_check` decides, without I/O, whether a deploy must ask the
//! first host if migrations are pending (`compile_probe`: the new code
//! fetched aside, its `pending` command run, nothing else touched). When
//! they are, a deploy is three kinds of change request instead of one:
//! `compile_enter` on every host (the proxy answers 503 with
//! `Retry-After`, workers stop, then web replicas; each step undone by
//! starting them again), then `compile_upgrade` on the first host (the
//! databases made sure of, the new code fetched and installed, the
//! migrations run, the new replicas started and checked, the proxy
//! switched to them: maintenance left) and on the others without the
//! migrations. A change that fails rolls itself back to "in maintenance,
//! old code stopped"; `compile_leave` then brings the hosts still in
//! maintenance back to the previous version (started, checked, proxy
//! switched back) when the migrations did not commit (`recovery`).

use std::collections::BTreeMap;

use vigie_wire::change::{ChangeSpec, Step};

use crate::compile::{
    database_steps, fetch_steps, forget_staged_step, health_step, host_path, migrate_steps,
    prelude, prune_step, replica_steps, route_list, run, site_conf, stop_placement, switch_steps,
    Duties, FETCH_TIMEOUT_MS,
};
use crate::inventory::{Component, Placement};
use crate::names::{Part, BIN_DIR};
use crate::plan::{DeployPlan, HostPlan};
use crate::scripts::maintenance_conf;
use crate::spec::{Environment, Role};
use crate::{env_file, sh_quote};

/// What a deploy does about migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MigrationCheck {
    /// No migrations, or the code of the service that runs them is not
    /// updated by this deploy.
    NotNeeded,
    /// Nothing of the environment runs yet: the first host runs the
    /// pending migrations in its rollout, before it starts anything.
    FirstDeploy,
    /// Ask the first host whether any are pending (`compile_probe`).
    Probe,
    /// A database is new to a running environment: they are pending.
    Pending,
}

/// What this deploy does about migrations (pure).
pub fn migration_check(env: &Environment, plan: &DeployPlan) -> MigrationCheck {
    let Some(m) = &env.migrations else {
        return MigrationCheck::NotNeeded;
    };
    let code = Component::Code(m.service.clone());
    if !plan.bumps.iter().any(|b| b.component == code) || plan.busy_hosts().next().is_none() {
        return MigrationCheck::NotNeeded;
    }
    let running = plan
        .hosts
        .iter()
        .any(|h| !h.steady.is_empty() || h.services.iter().any(|s| s.previous.is_some()));
    if !running {
        return MigrationCheck::FirstDeploy;
    }
    if plan.adds_database() {
        MigrationCheck::Pending
    } else {
        MigrationCheck::Probe
    }
}

/// The line the probe prints when migrations are pending, and when not.
const PENDING: &str = "migrations: pending";
const NONE: &str = "migrations: none";

/// What the probe's output says: `Some(true)` when migrations are pending.
pub fn probe_answer(stdout: &str) -> Option<bool> {
    stdout.lines().rev().find_map(|line| match line.trim() {
        PENDING => Some(true),
        NONE => Some(false),
        _ => None,
    })
}

/// Asking `host` whether migrations are pending: the new code of the
/// migrations' service fetched and installed in `probe/` beside its
/// instances, its `pending` command run with the new instance's
/// environment, `probe/src` removed again. Nothing that serves is touched.
pub fn compile_probe(env: &Environment, plan: &DeployPlan, host: &HostPlan) -> Option<ChangeSpec> {
    let m = env.migrations.as_ref()?;
    let service = host.services.iter().find(|s| s.name == m.service)?;
    let dir = format!("{}/probe", env.key.service_dir(&service.name));
    let qdir = host_path(&dir);
    let spec = &service.spec;
    let install = spec
        .install
        .as_ref()
        .map_or(String::new(), |i| format!(" && {i}"));
    let steps = vec![
        crate::compile::file(
            "environment of the migrations check".into(),
            format!("{dir}/migrate.env"),
            env_file(env, service, host.address, 0, None),
            0o600,
        ),
        run(
            format!("check for pending migrations ({})", spec.revision),
            format!(
                "s=99; rm -rf {qdir}/src && git clone -q --no-checkout {repo} {qdir}/src && git -C {qdir}/src checkout -q --detach {rev} && \
                 cd {qdir}/src{install} && set -a && . {qdir}/migrate.env && set +a && \
                 {{ sh -c {pending}; s=$?; }}; cd / && rm -rf {qdir}/src; \
                 case $s in 0) echo '{PENDING}';; 1) echo '{NONE}';; \
                 99) echo 'could not fetch or install the new code' >&2; exit 1;; \
                 *) echo \"the pending-migrations command failed ($s)\" >&2; exit $s;; esac",
                repo = sh_quote(&spec.repository),
                rev = sh_quote(&format!("{}^{{commit}}", spec.revision)),
                pending = sh_quote(&m.pending),
            ),
            Some(format!("rm -rf {qdir}/src")),
            FETCH_TIMEOUT_MS,
        ),
    ];
    Some(ChangeSpec {
        title: format!(
            "deploy {} #{} on {}: are migrations pending?",
            env.key, plan.number, host.host
        ),
        steps,
    })
}

/// Every replica of the environment running on `host` before this deploy:
/// the ones being replaced and the steady ones, workers first.
fn running_before(env: &Environment, host: &HostPlan) -> Vec<(Part, Placement)> {
    let mut all: Vec<(Part, Placement)> = host
        .services
        .iter()
        .filter_map(|s| s.previous.clone().map(|p| (s.name.clone(), p)))
        .chain(host.steady.iter().map(|(n, p)| (n.clone(), p.clone())))
        .collect();
    let is_web = |name: &Part| env.services.get(name).is_some_and(|s| s.role == Role::Web);
    all.sort_by_key(|(name, _)| (is_web(name), name.clone()));
    all
}

/// Starting replicas of instances that ran before (their `.env` is
/// there), each checked when it is a web replica; undo stops them.
pub(crate) fn start_placements(
    env: &Environment,
    host: &HostPlan,
    placed: &[(Part, Placement)],
) -> Vec<Step> {
    let supervise = host_path(&format!("{BIN_DIR}/supervise"));
    let mut steps = Vec::new();
    for (name, p) in placed {
        let Some(spec) = env.services.get(name) else {
            continue;
        };
        let qdir = host_path(&env.key.instance_dir(name, p.instance));
        for r in 1..=p.replicas {
            steps.push(run(
                format!("start {name} #{} replica {r}", p.instance),
                format!("{supervise} start {qdir} {r}"),
                Some(format!("{supervise} stop {qdir} {r}")),
                30_000,
            ));
            let port = p.ports.get((r - 1) as usize).copied();
            if let (Some(port), Some(health)) = (port, &spec.health) {
                steps.push(health_step(
                    format!("health of {name} #{} replica {r}", p.instance),
                    host.address,
                    port,
                    health,
                ));
            }
        }
    }
    steps
}

pub(crate) fn routes_of<'a>(
    env: &Environment,
    placed: impl Iterator<Item = (&'a Part, &'a [u16])>,
) -> BTreeMap<Part, Vec<u16>> {
    placed
        .filter(|(name, _)| env.services.get(*name).is_some_and(|s| s.role == Role::Web))
        .map(|(name, ports)| (name.clone(), ports.to_vec()))
        .collect()
}

/// Entering maintenance on `host`: the proxy answers 503, then workers and
/// web replicas stop (drained, SIGTERM → grace → SIGKILL).
pub fn compile_enter(env: &Environment, plan: &DeployPlan, host: &HostPlan) -> ChangeSpec {
    let mut steps = prelude(env);
    steps.extend(crate::verbs::page_step(env));
    steps.extend(switch_steps(
        env,
        &format!("maintenance-{}", plan.number),
        "maintenance".into(),
        maintenance_conf(
            &env.key,
            host.address,
            host.proxy_port,
            env.maintenance_page.is_some(),
        ),
    ));
    for (name, placed) in running_before(env, host) {
        let Some(spec) = env.services.get(&name) else {
            continue;
        };
        let drain = if spec.role == Role::Web {
            spec.drain_ms
        } else {
            0
        };
        steps.extend(stop_placement(&env.key, &name, &placed, spec, drain));
    }
    ChangeSpec {
        title: format!(
            "deploy {} #{} on {}: enter maintenance",
            env.key, plan.number, host.host
        ),
        steps,
    }
}

/// The new version on a host in maintenance, and maintenance left: the
/// first host (`duties`) also makes sure of the databases and runs the
/// migrations, once.
pub fn compile_upgrade(
    env: &Environment,
    plan: &DeployPlan,
    host: &HostPlan,
    duties: Duties,
) -> ChangeSpec {
    let key = &env.key;
    let mut steps = prelude(env);
    if duties.databases {
        steps.extend(database_steps(env));
    }
    for service in &host.services {
        steps.extend(fetch_steps(key, service));
    }
    if duties.migrate {
        let m = env.migrations.as_ref();
        if let Some(service) = host
            .services
            .iter()
            .find(|s| m.is_some_and(|m| m.service == s.name))
        {
            steps.extend(migrate_steps(env, service, host.address));
        }
    }
    for service in &host.services {
        for r in 1..=service.spec.replicas {
            steps.extend(replica_steps(env, service, host.address, r));
        }
    }
    let steady: Vec<(Part, Placement)> = host
        .steady
        .iter()
        .map(|(n, p)| (n.clone(), p.clone()))
        .collect();
    steps.extend(start_placements(env, host, &steady));
    let routes = routes_of(
        env,
        host.services
            .iter()
            .map(|s| (&s.name, s.ports.as_slice()))
            .chain(host.steady.iter().map(|(n, p)| (n, p.ports.as_slice()))),
    );
    steps.extend(switch_steps(
        env,
        &format!("release-{}", plan.number),
        "the new version (maintenance ends)".into(),
        site_conf(
            key,
            host.address,
            host.proxy_port,
            &route_list(env, &routes),
        ),
    ));
    steps.extend(host.services.iter().map(|s| prune_step(key, s)));
    steps.push(forget_staged_step(key));
    ChangeSpec {
        title: format!(
            "deploy {} #{} on {}: new version{}",
            env.key,
            plan.number,
            host.host,
            if duties.migrate { ", migrations" } else { "" }
        ),
        steps,
    }
}

/// Leaving maintenance with the previous version: what `compile_enter`
/// stopped is started and checked again, and the proxy routes to it.
pub fn compile_leave(env: &Environment, plan: &DeployPlan, host: &HostPlan) -> ChangeSpec {
    let mut steps = prelude(env);
    let before = running_before(env, host);
    steps.extend(start_placements(env, host, &before));
    let routes = routes_of(env, before.iter().map(|(n, p)| (n, p.ports.as_slice())));
    steps.extend(switch_steps(
        env,
        &format!("back-{}", plan.number),
        "the previous version (maintenance ends)".into(),
        site_conf(
            &env.key,
            host.address,
            host.proxy_port,
            &route_list(env, &routes),
        ),
    ));
    ChangeSpec {
        title: format!(
            "deploy {} #{} on {}: back to the previous version",
            env.key, plan.number, host.host
        ),
        steps,
    }
}
