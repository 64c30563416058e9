//! The verbs on a deployed environment (issue 19), pure: what each one
//! sends a host (`compile_verb`, a change request of existing step kinds,
//! each action with its undo) and what the inventory says after it
//! (`verb_record`). The deploy daemon runs them one host at a time
//! (`verb_rollout`).
//!
//! - `stop`/`start` a service's replicas (or every service's) through
//!   their supervisor; `restart` one replica at a time, each taken out of
//!   the proxy first and put back once healthy, so a service with two
//!   replicas or more never stops answering;
//! - `rollback`: the previous instance kept on disk started on fresh
//!   ports, checked, switched to replica by replica, then the current one
//!   drained and stopped — a rolling update without a fetch;
//! - `start`, `restart` and `rollback` write the environment's current
//!   secrets into the env files of the replicas they start
//!   (`verb_secrets`): never an older credential;
//! - `maintenance on|off` by hand: the site answers 503 with
//!   `Retry-After` (the environment's page when it has one), replicas
//!   keep running; `off` routes to them again;
//! - `undeploy`: the site removed, every replica stopped, the service
//!   directories removed, and the databases only with `--drop-data`;
//! - `rotate` (a secret set again): `restart` of the running replicas
//!   that read it, each with the new value (`verb_secrets`);
//! - `clean`: instance directories the inventory does not own (neither
//!   the current instance nor the one kept for a rollback) and service
//!   directories of this environment no service owns, removed (listed
//!   with `--dry-run`); an instance that runs is never removed.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use vigie_wire::change::{ChangeSpec, Step};
use vigie_wire::deploy::EnvVerb;

use crate::compile::{
    file, forget_staged_step, health_step, host_path, prelude, route_list, run, site_conf,
    switch_steps, STOP_MARGIN_MS,
};
use crate::inventory::{Component, ComponentState, DeployRecord, EnvRecord, Outcome, Placement};
use crate::names::{Part, BIN_DIR, PROXY_DIR};
use crate::scripts::maintenance_conf;
use crate::spec::{Environment, Role};
use crate::systemd::seconds;

/// The step that writes the environment's maintenance page, if it has one.
pub(crate) fn page_step(env: &Environment) -> Option<Step> {
    env.maintenance_page.as_ref().map(|page| {
        file(
            "the maintenance page".into(),
            format!("{PROXY_DIR}/pages/{}.html", env.key.stem()),
            page.clone(),
            0o644,
        )
    })
}

/// The services a verb is about: one (`--service`) or all.
pub fn services_of(verb: &EnvVerb) -> Option<&str> {
    match verb {
        EnvVerb::Stop { service } | EnvVerb::Start { service } | EnvVerb::Restart { service } => {
            service.as_deref()
        }
        _ => None,
    }
}

/// Why a verb cannot run on this record (pure, before any host is asked).
pub fn verb_refusal(env: &Environment, record: &EnvRecord, verb: &EnvVerb) -> Option<String> {
    if record.hosts.is_empty() && !matches!(verb, EnvVerb::Clean { .. }) {
        return Some(format!(
            "{} runs on no host: nothing to {}",
            record.key,
            verb.word()
        ));
    }
    if let Some(name) = services_of(verb) {
        let placed = record
            .hosts
            .values()
            .any(|h| h.services.keys().any(|p| p.as_str() == name));
        if !placed {
            return Some(format!("{} has no service {name:?} deployed", record.key));
        }
    }
    if *verb == EnvVerb::Rollback {
        let any = record.hosts.values().any(|h| {
            h.services
                .iter()
                .any(|(n, p)| previous_instance(record, n, p.instance).is_some())
        });
        if !any {
            return Some(format!(
                "{}: no previous instance to roll back to (one deploy so far)",
                record.key
            ));
        }
    }
    if let EnvVerb::Rotate { secret } = verb {
        let reads = record.hosts.values().any(|h| {
            h.services
                .keys()
                .any(|n| crate::verb_secrets::reads(env, n, secret) && !h.stopped.contains(n))
        });
        if !reads {
            return Some(format!(
                "no running replica of {} reads secret {secret}: its services read it when they next start",
                record.key
            ));
        }
    }
    let stuck = record.in_maintenance();
    if !stuck.is_empty() && !matches!(verb, EnvVerb::Undeploy { .. } | EnvVerb::Clean { .. }) {
        return Some(format!(
            "{} of {} left in maintenance by a deploy whose migrations may have committed: deploy a fixed version with --from-maintenance",
            stuck.join(", "),
            env.key
        ));
    }
    None
}

/// The instance a service ran before `current`: the newest one below it
/// that a successful deploy (or rollback) made current.
pub fn previous_instance(record: &EnvRecord, service: &Part, current: u32) -> Option<u32> {
    let code = Component::Code(service.clone());
    record
        .history
        .iter()
        .filter(|d| d.outcome == Outcome::Succeeded)
        .flat_map(|d| d.bumped.iter())
        .filter(|(c, n)| *c == code && *n < current)
        .map(|(_, n)| *n)
        .max()
}

/// A service rolled back on a host: from its placement to the previous
/// instance on fresh ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Back {
    pub service: Part,
    pub from: Placement,
    pub to: Placement,
}

/// What a rollback does on `host` (the same every time it is asked).
pub fn rollback_plan(
    env: &Environment,
    record: &EnvRecord,
    others: &[EnvRecord],
    host: &str,
) -> Vec<Back> {
    let Some(state) = record.hosts.get(host) else {
        return Vec::new();
    };
    let mut used: BTreeSet<u16> = record.ports_on(host);
    for o in others {
        used.extend(o.ports_on(host));
    }
    let mut out = Vec::new();
    for (name, placed) in &state.services {
        let Some(instance) = previous_instance(record, name, placed.instance) else {
            continue;
        };
        let web = env.services.get(name).is_some_and(|s| s.role == Role::Web);
        let wanted = if web { placed.replicas as usize } else { 0 };
        let Some(ports) = crate::ports::allocate(env.ports, &used, wanted) else {
            continue;
        };
        used.extend(ports.iter().copied());
        out.push(Back {
            service: name.clone(),
            from: placed.clone(),
            to: Placement {
                instance,
                replicas: placed.replicas,
                ports,
            },
        });
    }
    out
}

/// What a verb needs to know of a host beside the record.
#[derive(Debug, Clone)]
pub struct VerbHost<'a> {
    pub host: &'a str,
    pub address: Ipv4Addr,
    /// The first host of the verb (databases are dropped there only).
    pub first: bool,
    pub others: &'a [EnvRecord],
}

/// The change `verb` sends `host` (`None`: nothing to do there).
pub fn compile_verb(
    env: &Environment,
    record: &EnvRecord,
    verb: &EnvVerb,
    at: &VerbHost<'_>,
) -> Option<ChangeSpec> {
    let state = record.hosts.get(at.host);
    let steps = match verb {
        EnvVerb::Clean { dry_run } => vec![clean_step(env, record, at, *dry_run)],
        _ if state.is_none() => return None,
        EnvVerb::Stop { .. } => stop_start(env, record, verb, at, false),
        EnvVerb::Start { .. } => stop_start(env, record, verb, at, true),
        EnvVerb::Restart { .. } => restart_steps(env, record, verb, at),
        // A host where no running replica reads the secret has nothing to do.
        EnvVerb::Rotate { .. } if chosen(env, record, verb, at.host).is_empty() => return None,
        EnvVerb::Rotate { .. } => restart_steps(env, record, verb, at),
        EnvVerb::Rollback => rollback_steps(env, record, at),
        EnvVerb::Maintenance { on } => maintenance_steps(env, record, at, *on),
        EnvVerb::Undeploy { drop_data } => undeploy_steps(env, record, at, drop_data.is_some()),
    };
    if steps.is_empty() {
        return None;
    }
    Some(ChangeSpec {
        title: format!("{} {} on {}", verb.word(), env.key, at.host),
        steps,
    })
}

fn supervise() -> String {
    host_path(&format!("{BIN_DIR}/supervise"))
}

fn grace_ms(env: &Environment, name: &Part) -> u64 {
    env.services.get(name).map_or(10_000, |s| s.stop_grace_ms)
}

/// The placements of `host` a verb is about, workers first.
fn chosen<'a>(
    env: &Environment,
    record: &'a EnvRecord,
    verb: &EnvVerb,
    host: &str,
) -> Vec<(&'a Part, &'a Placement)> {
    let Some(state) = record.hosts.get(host) else {
        return Vec::new();
    };
    let only = services_of(verb);
    let mut all: Vec<(&Part, &Placement)> = state
        .services
        .iter()
        .filter(|(n, _)| match verb {
            // A stopped service stays stopped: it reads the value when started.
            EnvVerb::Rotate { secret } => {
                crate::verb_secrets::reads(env, n, secret) && !state.stopped.contains(*n)
            }
            _ => only.is_none_or(|o| n.as_str() == o),
        })
        .collect();
    let is_web = |n: &Part| env.services.get(n).is_some_and(|s| s.role == Role::Web);
    all.sort_by_key(|(n, _)| (is_web(n), (*n).clone()));
    all
}

fn start_replica(
    env: &Environment,
    name: &Part,
    p: &Placement,
    r: u32,
    address: Ipv4Addr,
) -> Vec<Step> {
    let qdir = host_path(&env.key.instance_dir(name, p.instance));
    let mut steps = vec![run(
        format!("start {name} #{} replica {r}", p.instance),
        format!("{} start {qdir} {r}", supervise()),
        Some(format!("{} stop {qdir} {r}", supervise())),
        30_000,
    )];
    let port = p.ports.get((r - 1) as usize).copied();
    let health = env.services.get(name).and_then(|s| s.health.as_ref());
    if let (Some(port), Some(health)) = (port, health) {
        steps.push(health_step(
            format!("health of {name} #{} replica {r}", p.instance),
            address,
            port,
            health,
        ));
    }
    steps
}

fn stop_replica(env: &Environment, name: &Part, p: &Placement, r: u32, drain_ms: u64) -> Step {
    let qdir = host_path(&env.key.instance_dir(name, p.instance));
    let drain = if drain_ms > 0 {
        format!("sleep {} && ", seconds(drain_ms))
    } else {
        String::new()
    };
    run(
        format!("stop {name} #{} replica {r}", p.instance),
        format!("{drain}{} stop {qdir} {r}", supervise()),
        Some(format!("{} start {qdir} {r}", supervise())),
        drain_ms + grace_ms(env, name) + STOP_MARGIN_MS,
    )
}

fn stop_start(
    env: &Environment,
    record: &EnvRecord,
    verb: &EnvVerb,
    at: &VerbHost<'_>,
    start: bool,
) -> Vec<Step> {
    let mut steps = if start { prelude(env) } else { Vec::new() };
    let mut placed = Vec::new();
    for (name, p) in chosen(env, record, verb, at.host) {
        for r in 1..=p.replicas {
            if start {
                // A replica that runs already keeps what it read; one
                // that starts reads the current secrets.
                steps.extend(crate::verb_secrets::rewrite_steps(env, name, p.instance, r));
                steps.extend(start_replica(env, name, p, r, at.address));
            } else {
                steps.push(stop_replica(env, name, p, r, 0));
            }
        }
        placed.push((name.clone(), p.instance));
    }
    if start {
        steps.extend(crate::verb_secrets::forget_step(env, &placed));
    }
    steps
}

/// Each web service's ports the site routes to, as recorded.
fn routes_now(env: &Environment, record: &EnvRecord, host: &str) -> BTreeMap<Part, Vec<u16>> {
    record.hosts.get(host).map_or_else(BTreeMap::new, |s| {
        s.services
            .iter()
            .filter(|(n, _)| env.services.get(*n).is_some_and(|s| s.role == Role::Web))
            .map(|(n, p)| (n.clone(), p.ports.clone()))
            .collect()
    })
}

fn site(
    env: &Environment,
    record: &EnvRecord,
    at: &VerbHost<'_>,
    routes: &BTreeMap<Part, Vec<u16>>,
) -> String {
    let listen = record
        .hosts
        .get(at.host)
        .and_then(|s| s.proxy_port)
        .unwrap_or_default();
    site_conf(&env.key, at.address, listen, &route_list(env, routes))
}

/// One replica at a time: out of the proxy (when another one serves),
/// drained, stopped, started, checked, back in.
fn restart_steps(
    env: &Environment,
    record: &EnvRecord,
    verb: &EnvVerb,
    at: &VerbHost<'_>,
) -> Vec<Step> {
    let mut steps = prelude(env);
    let routes = routes_now(env, record, at.host);
    let paused = record.hosts.get(at.host).is_some_and(|s| s.paused);
    let mut placed = Vec::new();
    for (name, p) in chosen(env, record, verb, at.host) {
        placed.push((name.clone(), p.instance));
        let drain = env.services.get(name).map_or(0, |s| s.drain_ms);
        for r in 1..=p.replicas {
            let port = p.ports.get((r - 1) as usize).copied();
            let routed = routes.contains_key(name) && !paused && p.ports.len() > 1;
            if let (true, Some(port)) = (routed, port) {
                let mut out = routes.clone();
                if let Some(ports) = out.get_mut(name) {
                    ports.retain(|q| *q != port);
                }
                let tag = format!("restart-{name}-{r}-out");
                let conf = site(env, record, at, &out);
                steps.extend(switch_steps(
                    env,
                    &tag,
                    format!("{name} without replica {r}"),
                    conf,
                ));
                steps.push(stop_replica(env, name, p, r, drain));
            } else {
                steps.push(stop_replica(env, name, p, r, 0));
            }
            steps.extend(crate::verb_secrets::rewrite_steps(env, name, p.instance, r));
            steps.extend(start_replica(env, name, p, r, at.address));
            if routed {
                let tag = format!("restart-{name}-{r}-in");
                let conf = site(env, record, at, &routes);
                steps.extend(switch_steps(
                    env,
                    &tag,
                    format!("{name} with replica {r}"),
                    conf,
                ));
            }
        }
    }
    steps.push(forget_staged_step(&env.key));
    steps.extend(crate::verb_secrets::forget_step(env, &placed));
    steps
}

/// The previous instance's replica `r` gets its `.env` back with `port`
/// (the one it had is another's by now); replica 1's serves a replica
/// the instance did not have.
/// A service that reads secrets gets their current values (the fragment
/// `verb_secrets::fragment_step` wrote) in place of the ones the
/// instance was deployed with.
fn env_for_port(env: &Environment, name: &Part, instance: u32, r: u32, port: u16) -> Step {
    let dir = host_path(&env.key.instance_dir(name, instance));
    let (plain, secrets) = if crate::verb_secrets::reads_any(env, name) {
        (
            format!("{} \"$src\" | ", crate::verb_secrets::plain_part(env, name)),
            format!(" && cat {dir}/replica-{r}/env.secrets >>{dir}/replica-{r}/env.new && rm -f {dir}/replica-{r}/env.secrets"),
        )
    } else {
        (String::new(), String::new())
    };
    let input = if plain.is_empty() { " \"$src\"" } else { "" };
    run(
        format!("environment of {name} #{instance} replica {r} (port {port})"),
        format!(
            "umask 077; [ -d {dir}/src ] || {{ echo 'instance {name} #{instance} is no longer on this host: nothing to roll back to' >&2; exit 1; }}; \
             src={dir}/replica-{r}/env; [ -f \"$src\" ] || src={dir}/replica-1/env; mkdir -p {dir}/replica-{r} && \
             {plain}sed -e \"s/^PORT=.*/PORT='{port}'/\" -e \"s/^REPLICA=.*/REPLICA='{r}'/\"{input} >{dir}/replica-{r}/env.new{secrets} && \
             chmod 600 {dir}/replica-{r}/env.new && mv {dir}/replica-{r}/env.new {dir}/replica-{r}/env"
        ),
        None,
        30_000,
    )
}

fn rollback_steps(env: &Environment, record: &EnvRecord, at: &VerbHost<'_>) -> Vec<Step> {
    let backs = rollback_plan(env, record, at.others, at.host);
    if backs.is_empty() {
        return Vec::new();
    }
    let mut steps = prelude(env);
    let mut routes = routes_now(env, record, at.host);
    let mut stops = Vec::new();
    for b in &backs {
        let name = &b.service;
        let web = routes.contains_key(name);
        if !web {
            // Workers never overlap: the current ones stop first.
            for r in 1..=b.from.replicas {
                steps.push(stop_replica(env, name, &b.from, r, 0));
            }
        }
        for r in 1..=b.to.replicas {
            let port = b.to.ports.get((r - 1) as usize).copied();
            if let Some(port) = port {
                steps.extend(crate::verb_secrets::fragment_step(
                    env,
                    name,
                    b.to.instance,
                    r,
                ));
                steps.push(env_for_port(env, name, b.to.instance, r, port));
            } else {
                steps.extend(crate::verb_secrets::rewrite_steps(
                    env,
                    name,
                    b.to.instance,
                    r,
                ));
            }
            steps.extend(start_replica(env, name, &b.to, r, at.address));
            if let (Some(port), Some(ports)) = (port, routes.get_mut(name)) {
                let rank = (r - 1) as usize;
                if rank < ports.len() {
                    ports[rank] = port;
                } else {
                    ports.push(port);
                }
                let tag = format!("rollback-{name}-{}-{r}", b.to.instance);
                let conf = site(env, record, at, &routes);
                let what = format!("{name} #{} replica {r}", b.to.instance);
                steps.extend(switch_steps(env, &tag, what, conf));
            }
        }
        if web {
            stops.push(b);
        }
    }
    for b in stops {
        let drain = env.services.get(&b.service).map_or(0, |s| s.drain_ms);
        for r in 1..=b.from.replicas {
            steps.push(stop_replica(env, &b.service, &b.from, r, drain));
        }
    }
    steps.push(forget_staged_step(&env.key));
    let placed: Vec<(Part, u32)> = backs
        .iter()
        .map(|b| (b.service.clone(), b.to.instance))
        .collect();
    steps.extend(crate::verb_secrets::forget_step(env, &placed));
    steps
}

fn maintenance_steps(
    env: &Environment,
    record: &EnvRecord,
    at: &VerbHost<'_>,
    on: bool,
) -> Vec<Step> {
    let mut steps = prelude(env);
    let listen = record
        .hosts
        .get(at.host)
        .and_then(|s| s.proxy_port)
        .unwrap_or_default();
    let number = record.history.len() + 1;
    if on {
        steps.extend(page_step(env));
        let conf = maintenance_conf(&env.key, at.address, listen, env.maintenance_page.is_some());
        let tag = format!("paused-{number}");
        steps.extend(switch_steps(
            env,
            &tag,
            "maintenance (by hand)".into(),
            conf,
        ));
    } else {
        let conf = site(env, record, at, &routes_now(env, record, at.host));
        let tag = format!("resumed-{number}");
        steps.extend(switch_steps(
            env,
            &tag,
            "the replicas (maintenance ends)".into(),
            conf,
        ));
    }
    steps.push(forget_staged_step(&env.key));
    steps
}

fn undeploy_steps(
    env: &Environment,
    record: &EnvRecord,
    at: &VerbHost<'_>,
    drop_data: bool,
) -> Vec<Step> {
    let mut steps = prelude(env);
    let stem = env.key.stem();
    let proxy = host_path(&format!("{BIN_DIR}/proxy"));
    let number = record.history.len() + 1;
    steps.push(run(
        "remove the proxy site".into(),
        format!("{proxy} remove {stem} undeploy-{number}"),
        Some(format!("{proxy} back {stem} undeploy-{number}")),
        60_000,
    ));
    let every = EnvVerb::Stop { service: None };
    for (name, p) in chosen(env, record, &every, at.host) {
        for r in 1..=p.replicas {
            steps.push(stop_replica(env, name, p, r, 0));
        }
    }
    let mut script = String::new();
    let state = record.hosts.get(at.host);
    for name in state.iter().flat_map(|s| s.services.keys()) {
        let dir = host_path(&env.key.service_dir(name));
        let _ = write!(
            script,
            "for d in {dir}/*; do [ -d \"$d\" ] || continue; if {sup} running \"$d\" 0; then echo \"$d runs: not removed\" >&2; exit 1; fi; done; \
             rm -rf {dir} && echo 'removed {name}'; ",
            sup = supervise()
        );
    }
    let page = host_path(&format!("{PROXY_DIR}/pages/{stem}.html"));
    let _ = write!(script, "rm -f {page}; true");
    steps.push(run(
        "remove the services' directories".into(),
        script,
        None,
        600_000,
    ));
    steps.push(forget_staged_step(&env.key));
    if drop_data && at.first {
        let helper = host_path(&format!("{BIN_DIR}/database"));
        for (name, spec) in &env.databases {
            let db = env.key.database(name);
            steps.push(run(
                format!("drop database {db}"),
                format!("{helper} drop {} {db}", crate::sh_quote(&spec.server.admin)),
                None,
                60_000,
            ));
        }
    }
    steps
}

/// The instance numbers of `name` the inventory owns on a host: the one
/// that runs and the one kept for a rollback.
fn owned_instances(record: &EnvRecord, name: &Part, placed: Option<&Placement>) -> Vec<u32> {
    let Some(p) = placed else {
        return Vec::new();
    };
    let mut keep = vec![p.instance];
    keep.extend(previous_instance(record, name, p.instance));
    keep
}

/// The step that removes (or, `dry_run`, lists) what the inventory does
/// not own on a host: instance directories of its services beyond the
/// current and the kept one, and directories `auto-<app>-<env>-*` that
/// are neither one of its services' nor another environment's. An
/// instance that runs is never removed.
fn clean_step(env: &Environment, record: &EnvRecord, at: &VerbHost<'_>, dry_run: bool) -> Step {
    let others = at.others;
    let state = record.hosts.get(at.host);
    let verb = if dry_run { "would remove" } else { "removed" };
    let act = |path: &str| {
        if dry_run {
            format!("echo \"clean: {verb} {path}\"")
        } else {
            format!("rm -rf \"{path}\" && echo \"clean: {verb} {path}\"")
        }
    };
    let sup = supervise();
    let mut script =
        String::from("cd \"${VIGIE_HOST_ROOT%/}\"/srv/services 2>/dev/null || exit 0\n");
    let mut mine: BTreeSet<String> = BTreeSet::new();
    let hosts: Vec<&crate::inventory::HostState> = record.hosts.values().collect();
    let names: BTreeSet<&Part> = hosts.iter().flat_map(|h| h.services.keys()).collect();
    for name in names {
        let dir = env.key.service_dir(name);
        let base = dir.rsplit('/').next().unwrap_or_default().to_owned();
        mine.insert(base.clone());
        let placed = state.and_then(|s| s.services.get(name));
        let owned: Vec<String> = owned_instances(record, name, placed)
            .iter()
            .map(u32::to_string)
            .collect();
        // A host's own placement decides; hosts without one own nothing.
        let _ = writeln!(
            script,
            "[ -d {base} ] && for d in {base}/*; do n=${{d##*/}}; case \"$n\" in ''|*[!0-9]*) continue;; esac; \
             case ' {owned} ' in *\" $n \"*) continue;; esac; \
             if {sup} running \"$PWD/$d\" 0; then echo \"clean: $d runs: kept\"; continue; fi; {rm}; done",
            owned = owned.join(" "),
            rm = act("$d"),
        );
    }
    let theirs: BTreeSet<String> = others
        .iter()
        .flat_map(|o| {
            o.hosts
                .values()
                .flat_map(|h| h.services.keys())
                .map(|n| o.key.service_dir(n))
                .collect::<Vec<_>>()
        })
        .filter_map(|d| d.rsplit('/').next().map(str::to_owned))
        .collect();
    let keep: Vec<String> = mine.iter().chain(theirs.iter()).cloned().collect();
    let _ = writeln!(
        script,
        "for d in {stem}-*; do [ -d \"$d\" ] || continue; case \" {keep} \" in *\" $d \"*) continue;; esac; \
         busy=0; for i in \"$d\"/*; do [ -d \"$i\" ] && {sup} running \"$PWD/$i\" 0 && busy=1; done; \
         if [ $busy = 1 ]; then echo \"clean: $d runs: kept\"; continue; fi; {rm}; done; true",
        stem = env.key.stem(),
        keep = keep.join(" "),
        rm = act("$d"),
    );
    run(CLEAN_STEP.into(), script, None, 600_000)
}

/// The name of `clean`'s step: the daemon says what its output lists.
pub const CLEAN_STEP: &str = "clean what the inventory does not own";

/// What a verb that succeeded on `host` changes of the record `next`;
/// the components a rollback made current.
fn host_after(
    env: &Environment,
    record: &EnvRecord,
    verb: &EnvVerb,
    host: &str,
    others: &[EnvRecord],
    next: &mut EnvRecord,
) -> Vec<(Component, u32)> {
    let mut bumped = Vec::new();
    let backs = if *verb == EnvVerb::Rollback {
        rollback_plan(env, record, others, host)
    } else {
        Vec::new()
    };
    let Some(state) = next.hosts.get_mut(host) else {
        return bumped;
    };
    let only = services_of(verb);
    let names: Vec<Part> = state
        .services
        .keys()
        .filter(|n| only.is_none_or(|o| n.as_str() == o))
        .cloned()
        .collect();
    match verb {
        EnvVerb::Stop { .. } => state.stopped.extend(names),
        EnvVerb::Start { .. } | EnvVerb::Restart { .. } => {
            state.stopped.retain(|n| !names.contains(n));
        }
        EnvVerb::Maintenance { on } => state.paused = *on,
        EnvVerb::Rollback => {
            for b in backs {
                state.stopped.remove(&b.service);
                state.services.insert(b.service.clone(), b.to.clone());
                bumped.push((Component::Code(b.service), b.to.instance));
            }
        }
        EnvVerb::Undeploy { .. } => {
            next.hosts.remove(host);
        }
        EnvVerb::Clean { .. } | EnvVerb::Rotate { .. } => {}
    }
    bumped
}

/// The catalog version that runs after `verb` (what keeps a version in
/// use, `deployments show`): the last deploy's, the one before it after a
/// rollback, none after an undeploy.
fn version_after(record: &EnvRecord, verb: &EnvVerb) -> Option<String> {
    let mut deploys = record
        .history
        .iter()
        .rev()
        .filter(|d| d.outcome == Outcome::Succeeded && d.verb.is_none());
    match verb {
        EnvVerb::Undeploy { .. } => None,
        EnvVerb::Rollback => deploys.nth(1).and_then(|d| d.version.clone()),
        _ => deploys.next().and_then(|d| d.version.clone()),
    }
}

/// The environment's record after a verb: `results` holds each host's
/// change and whether it succeeded; only hosts that succeeded change.
pub fn verb_record(
    env: &Environment,
    record: &EnvRecord,
    verb: &EnvVerb,
    results: &BTreeMap<String, (String, bool)>,
    others: &[EnvRecord],
) -> EnvRecord {
    let mut next = record.clone();
    let mut bumped = Vec::new();
    for (host, (_, ok)) in results {
        if *ok {
            bumped.extend(host_after(env, record, verb, host, others, &mut next));
        }
    }
    bumped.sort();
    bumped.dedup();
    for (component, instance) in &bumped {
        // The spec it was made from is not known any more: the next
        // deploy of any file makes a new instance.
        next.components.insert(
            component.clone(),
            ComponentState {
                instance: *instance,
                digest: format!("rolled back to instance {instance}"),
            },
        );
    }
    let all_ok = results.values().all(|(_, ok)| *ok);
    if next.hosts.is_empty() && all_ok {
        next.components.clear();
    }
    next.history.push(DeployRecord {
        number: u32::try_from(record.history.len()).unwrap_or(u32::MAX - 1) + 1,
        bumped,
        changes: results
            .iter()
            .map(|(h, (c, _))| (h.clone(), c.clone()))
            .collect(),
        outcome: if all_ok {
            Outcome::Succeeded
        } else {
            Outcome::RolledBack
        },
        maintenance: false,
        run: None,
        at_ms: None,
        operator: None,
        revisions: BTreeMap::new(),
        version: version_after(record, verb),
        verb: Some(match (services_of(verb), verb) {
            (Some(s), _) => format!("{} {s}", verb.word()),
            (None, EnvVerb::Rotate { secret }) => format!("{} {secret}", verb.word()),
            (None, _) => verb.word().to_owned(),
        }),
    });
    next
}
