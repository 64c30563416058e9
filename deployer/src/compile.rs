//! From a host's plan to its change request: the steps of a rolling
//! update, each with its undo, so that a deploy gets what every change
//! has (per-host FIFO, step reports, automatic rollback, audit).
//!
//! Per web service: fetch the new instance's code, install it, then for
//! each replica in turn start it on its new port, wait for its health
//! check, and switch the proxy (old and new replicas side by side until
//! then). Only when every replica is switched are the old ones drained
//! and stopped (SIGTERM → grace → SIGKILL), so a failure anywhere before
//! rolls back to a proxy that only knows old, still running replicas.
//! Workers stop before their new instance starts: old and new workers
//! never overlap (Dokku #2125).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

use vigie_wire::change::{Action, ChangeSpec, Command, Probe, Step};

use crate::names::{EnvKey, Part, BIN_DIR, PROXY_DIR};
use crate::plan::{DeployPlan, HostPlan, ServicePlan};
use crate::scripts::{DATABASE, NGINX_CONF, PROXY, SUPERVISE};
use crate::spec::{connections, Environment, Role};
use crate::systemd::seconds;

/// How long fetching code or installing it may take.
pub(crate) const FETCH_TIMEOUT_MS: u64 = 600_000;
/// Margin over the grace period for a stop step.
pub(crate) const STOP_MARGIN_MS: u64 = 30_000;

/// A word for `/bin/sh`: single-quoted, quotes inside escaped.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A host path as a shell word, under the host root the driver gives in
/// `$VIGIE_HOST_ROOT` (`/` on a real host).
pub(crate) fn host_path(path: &str) -> String {
    format!("\"${{VIGIE_HOST_ROOT%/}}\"{}", sh_quote(path))
}

pub(crate) fn run(name: String, line: String, undo: Option<String>, timeout_ms: u64) -> Step {
    Step {
        name,
        action: Action::Run {
            command: Command::Shell(line),
            undo: undo.map(Command::Shell),
            env: Vec::new(),
            cwd: None,
            timeout_ms,
        },
    }
}

pub(crate) fn file(name: String, path: String, content: String, mode: u32) -> Step {
    Step {
        name,
        action: Action::File {
            path,
            content: content.into_bytes(),
            mode: Some(mode),
        },
    }
}

/// The `.env` of one replica: what the deployer decided, then the spec's.
pub fn env_file(
    env: &Environment,
    service: &ServicePlan,
    address: Ipv4Addr,
    replica: u32,
    port: Option<u16>,
) -> String {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    vars.insert("BIND".into(), address.to_string());
    if let Some(port) = port {
        vars.insert("PORT".into(), port.to_string());
    }
    vars.insert("INSTANCE".into(), service.instance.to_string());
    vars.insert("REPLICA".into(), replica.to_string());
    vars.extend(connections(env));
    for (k, v) in &service.spec.env {
        vars.insert(k.clone(), v.clone());
    }
    let mut out = String::from("# Written by the Vigie deployer.\n");
    for (k, v) in vars {
        let _ = writeln!(out, "{k}={}", sh_quote(&v));
    }
    out
}

/// The nginx site of an environment on a host, routing each web service's
/// path to the given replicas' ports.
pub fn site_conf(
    key: &EnvKey,
    address: Ipv4Addr,
    listen: u16,
    routes: &[(String, String, Vec<u16>)],
) -> String {
    let mut out = format!("# Written by the Vigie deployer for {key}.\n");
    for (upstream, _, ports) in routes {
        let _ = writeln!(out, "upstream {upstream} {{");
        for port in ports {
            let _ = writeln!(out, "    server {address}:{port} max_fails=0;");
        }
        out.push_str("}\n");
    }
    let _ = writeln!(out, "server {{\n    listen {address}:{listen};");
    for (upstream, path, _) in routes {
        let _ = writeln!(
            out,
            "    location {path} {{\n        proxy_pass http://{upstream};\n        proxy_next_upstream error timeout http_502;\n        proxy_connect_timeout 2s;\n    }}"
        );
    }
    out.push_str("}\n");
    out
}

/// What a host does in a deploy beyond its own rollout: the first host of
/// a rollout also makes sure the databases exist and runs the migrations,
/// so both happen once per deploy, not once per host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Duties {
    pub databases: bool,
    pub migrate: bool,
}

impl Duties {
    /// The duties of the `index`th host of a rollout.
    pub fn of_host(env: &Environment, index: usize, migrate: bool) -> Duties {
        Duties {
            databases: index == 0 && !env.databases.is_empty(),
            migrate: index == 0 && migrate && env.migrations.is_some(),
        }
    }
}

/// The helpers every deploy installs first, and the host's proxy started.
pub(crate) fn prelude(env: &Environment) -> Vec<Step> {
    let mut steps = vec![
        file(
            "install the supervisor".into(),
            format!("{BIN_DIR}/supervise"),
            SUPERVISE.into(),
            0o755,
        ),
        file(
            "install the proxy switch".into(),
            format!("{BIN_DIR}/proxy"),
            PROXY.into(),
            0o755,
        ),
    ];
    if !env.databases.is_empty() {
        steps.push(file(
            "install the database helper".into(),
            format!("{BIN_DIR}/database"),
            DATABASE.into(),
            0o755,
        ));
    }
    steps.push(file(
        "configure the proxy".into(),
        format!("{PROXY_DIR}/nginx.conf"),
        NGINX_CONF.into(),
        0o644,
    ));
    steps.push(run(
        "start the proxy".into(),
        format!("{} ensure", host_path(&format!("{BIN_DIR}/proxy"))),
        None,
        60_000,
    ));
    steps
}

/// Each database and its role made sure of; the undo drops only what the
/// step itself created.
pub(crate) fn database_steps(env: &Environment) -> Vec<Step> {
    let helper = host_path(&format!("{BIN_DIR}/database"));
    env.databases
        .iter()
        .map(|(name, spec)| {
            let db = env.key.database(name);
            let admin = sh_quote(&spec.server.admin);
            run(
                format!("database {db}"),
                format!("{helper} ensure {admin} {db}"),
                Some(format!("{helper} undo {admin} {db}")),
                60_000,
            )
        })
        .collect()
}

/// Fetching a service's new instance and installing it.
pub(crate) fn fetch_steps(key: &EnvKey, service: &ServicePlan) -> Vec<Step> {
    let spec = &service.spec;
    let dir = key.instance_dir(&service.name, service.instance);
    let qdir = host_path(&dir);
    let label = format!("{} #{}", service.name, service.instance);
    let supervise = host_path(&format!("{BIN_DIR}/supervise"));
    let mut steps = vec![
        run(
            format!("fetch {label} ({})", spec.revision),
            format!(
                // An instance that runs is never replaced (its directory
                // would go); a failed step is not undone: it cleans up
                // after itself.
                "if {supervise} running {qdir} 0; then echo 'instance {label} is running: a deploy never replaces a running instance' >&2; exit 75; fi; \
                 rm -rf {qdir} && mkdir -p {qdir} && git clone -q --no-checkout {repo} {qdir}/src && git -C {qdir}/src checkout -q --detach {rev} || {{ status=$?; rm -rf {qdir}; exit $status; }}",
                repo = sh_quote(&spec.repository),
                rev = sh_quote(&format!("{}^{{commit}}", spec.revision)),
            ),
            Some(format!("rm -rf {qdir}")),
            FETCH_TIMEOUT_MS,
        ),
        file(
            format!("start command of {label}"),
            format!("{dir}/start"),
            format!("{}\n", spec.start),
            0o644,
        ),
        file(
            format!("grace period of {label}"),
            format!("{dir}/stop_grace"),
            format!("{}\n", seconds(spec.stop_grace_ms)),
            0o644,
        ),
    ];
    if let Some(health) = &spec.health {
        steps.push(file(
            format!("health watch of {label}"),
            format!("{dir}/{}", vigie_wire::observe::HEALTH_WATCH_FILE),
            watch_file(health),
            0o644,
        ));
    }
    steps.push(file(
        format!("systemd unit of {label}"),
        format!(
            "{dir}/{}",
            crate::systemd::unit_template(key, &service.name, service.instance)
        ),
        crate::systemd::unit_text(key, &service.name, service.instance, spec),
        0o644,
    ));
    if let Some(install) = &spec.install {
        steps.push(run(
            format!("install {label}"),
            format!("cd {qdir}/src && {install}"),
            None,
            FETCH_TIMEOUT_MS,
        ));
    }
    steps
}

/// What the agent's health watch of an instance needs
/// (`vigie_wire::observe::HEALTH_WATCH_FILE`).
pub fn watch_file(health: &crate::spec::Health) -> String {
    vigie_wire::observe::HealthWatch {
        path: health.path.clone(),
        every_ms: health.watch_every_ms(),
        timeout_ms: health.timeout_ms,
        restart_after: health.restarts_after(),
        start_ms: health.start_ms(),
    }
    .render()
}

/// Running the pending migrations, if any, in the code of the instance in
/// `dir` with that instance's environment. Exit 0 of `pending`: some are
/// pending; 1: none; anything else is an error.
/// The name of the step that runs the migrations: the CLI reads its
/// result to know whether they committed (`recovery`).
pub const MIGRATE_STEP: &str = "run the pending migrations";

pub(crate) fn migrate_steps(
    env: &Environment,
    service: &ServicePlan,
    address: Ipv4Addr,
) -> Vec<Step> {
    let Some(m) = &env.migrations else {
        return Vec::new();
    };
    let dir = env.key.instance_dir(&service.name, service.instance);
    let qdir = host_path(&dir);
    vec![
        file(
            "environment of the migrations".into(),
            format!("{dir}/migrate.env"),
            env_file(env, service, address, 0, None),
            0o600,
        ),
        run(
            MIGRATE_STEP.into(),
            format!(
                "s=99; cd {qdir}/src && set -a && . {qdir}/migrate.env && set +a && \
                 {{ sh -c {pending}; s=$?; }}; \
                 case $s in 0) echo 'migrations pending: applying'; sh -c {apply} || exit $?; echo 'migrations applied';; \
                 1) echo 'no migration pending';; \
                 99) echo 'cannot enter the instance or read its environment' >&2; exit 1;; \
                 *) echo \"the pending-migrations command failed ($s)\" >&2; exit $s;; esac",
                pending = sh_quote(&m.pending),
                apply = sh_quote(&m.apply),
            ),
            // Nothing here can undo a migration: see ARCHITECTURE.md.
            None,
            FETCH_TIMEOUT_MS,
        ),
    ]
}

/// The steps that start one replica of a new instance and, for a web
/// service, wait until it is healthy.
pub(crate) fn replica_steps(
    env: &Environment,
    service: &ServicePlan,
    address: Ipv4Addr,
    r: u32,
) -> Vec<Step> {
    let supervise = host_path(&format!("{BIN_DIR}/supervise"));
    let dir = env.key.instance_dir(&service.name, service.instance);
    let qdir = host_path(&dir);
    let label = format!("{} #{}", service.name, service.instance);
    let port = service.ports.get((r - 1) as usize).copied();
    let mut steps = vec![
        file(
            format!("environment of {label} replica {r}"),
            format!("{dir}/replica-{r}/env"),
            env_file(env, service, address, r, port),
            0o600,
        ),
        run(
            format!("start {label} replica {r}"),
            format!("{supervise} start {qdir} {r}"),
            Some(format!("{supervise} stop {qdir} {r}")),
            30_000,
        ),
    ];
    if let (Some(port), Some(health)) = (port, &service.spec.health) {
        steps.push(health_step(
            format!("health of {label} replica {r}"),
            address,
            port,
            health,
        ));
    }
    steps
}

pub(crate) fn health_step(
    name: String,
    address: Ipv4Addr,
    port: u16,
    health: &crate::spec::Health,
) -> Step {
    Step {
        name,
        action: Action::Check {
            probe: Probe::Http {
                url: format!("http://{address}:{port}{}", health.path),
                status: 200,
            },
            retries: health.retries,
            interval_ms: health.interval_ms,
            timeout_ms: health.timeout_ms,
        },
    }
}

/// Removing a service's instance directories other than the new one and
/// the one it replaces (bounded disk). Last step of a change, so nothing
/// after it can fail and ask for them back; an instance still running is
/// never among them (only the previous one ran, and it is kept).
pub(crate) fn prune_step(key: &EnvKey, service: &ServicePlan) -> Step {
    let keep = crate::plan::kept_instances(service);
    let words: Vec<String> = keep.iter().map(u32::to_string).collect();
    let dir = key.service_dir(&service.name);
    let qdir = host_path(&dir);
    // On a systemd host the instance's unit was linked from /etc: its
    // link goes with it (the unit itself was disabled when it stopped).
    let unit_stem = dir.rsplit('/').next().unwrap_or_default();
    let supervise = host_path(&format!("{BIN_DIR}/supervise"));
    run(
        format!("prune old instances of {}", service.name),
        format!(
            "cd {qdir} && for d in *; do case \"$d\" in ''|*[!0-9]*) continue;; esac; \
             if {supervise} running \"$PWD/$d\" 0; then echo \"instance $d runs: kept\"; continue; fi; \
             case ' {keep} ' in *\" $d \"*) ;; *) rm -rf \"./$d\" && echo \"removed instance $d\"; \
             link=\"/etc/systemd/system/{unit_stem}-$d@.service\"; \
             [ -z \"${{VIGIE_HOST_ROOT%/}}\" ] && [ -L \"$link\" ] && rm -f \"$link\";; esac; done; true",
            keep = words.join(" "),
        ),
        None,
        FETCH_TIMEOUT_MS,
    )
}

/// Forgetting the proxy configurations this change staged (and the ones
/// their undos would have put back): once the change cannot fail any
/// more, nothing needs them, and they would pile up deploy after deploy.
pub(crate) fn forget_staged_step(key: &EnvKey) -> Step {
    let staged = host_path(&format!("{PROXY_DIR}/staged"));
    run(
        "forget the staged proxy configs".into(),
        format!("rm -f {staged}/{}.*; true", key.stem()),
        None,
        60_000,
    )
}

/// The routes of a host's site, one per web service with replicas.
pub(crate) fn route_list(
    env: &Environment,
    routes: &BTreeMap<Part, Vec<u16>>,
) -> Vec<(String, String, Vec<u16>)> {
    let stem = env.key.stem();
    routes
        .iter()
        .filter(|(_, ports)| !ports.is_empty())
        .map(|(name, ports)| {
            let path = env
                .services
                .get(name)
                .and_then(|s| s.path.clone())
                .unwrap_or_else(|| "/".into());
            (format!("{stem}-{name}"), path, ports.clone())
        })
        .collect()
}

/// Staging a site configuration and putting it live (`nginx -t` first);
/// the undo puts back the one it replaced.
pub(crate) fn switch_steps(env: &Environment, tag: &str, what: String, conf: String) -> Vec<Step> {
    let stem = env.key.stem();
    let proxy = host_path(&format!("{BIN_DIR}/proxy"));
    vec![
        file(
            format!("proxy config for {what}"),
            format!("{PROXY_DIR}/staged/{stem}.{tag}"),
            conf,
            0o644,
        ),
        run(
            format!("switch the proxy to {what}"),
            format!("{proxy} apply {stem} {tag}"),
            Some(format!("{proxy} back {stem} {tag}")),
            60_000,
        ),
    ]
}

/// The change request that deploys `plan` on one host as a rolling update.
/// Each web service's ports the proxy routes to before the deploy.
fn routes_before(env: &Environment, host: &HostPlan) -> BTreeMap<Part, Vec<u16>> {
    let mut routes: BTreeMap<Part, Vec<u16>> = BTreeMap::new();
    for (name, placed) in &host.steady {
        if env.services.get(name).is_some_and(|s| s.role == Role::Web) {
            routes.insert(name.clone(), placed.ports.clone());
        }
    }
    for service in &host.services {
        if service.spec.role == Role::Web {
            let old = service
                .previous
                .as_ref()
                .map(|p| p.ports.clone())
                .unwrap_or_default();
            routes.insert(service.name.clone(), old);
        }
    }
    routes
}

/// A rolling update on one host: new replicas beside the old, one proxy
/// switch, then the old ones drained and stopped.
pub fn compile_host(
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

    // Every new web replica starts and is checked beside the old ones,
    // then one proxy switch routes to them all: one nginx reload per host
    // and deploy, since each reload closes idle keep-alive connections.
    let mut routes = routes_before(env, host);
    let mut switched = Vec::new();
    let web_first = host.services.iter().filter(|s| s.spec.role == Role::Web);
    let workers = host.services.iter().filter(|s| s.spec.role == Role::Worker);
    let mut migrated = !duties.migrate;
    for service in web_first.chain(workers) {
        let name = &service.name;
        let spec = &service.spec;
        steps.extend(fetch_steps(key, service));
        if !migrated && env.migrations.as_ref().is_some_and(|m| &m.service == name) {
            // A first deploy: nothing serves yet, no maintenance needed.
            steps.extend(migrate_steps(env, service, host.address));
            migrated = true;
        }
        if spec.role == Role::Worker {
            steps.extend(stop_steps(key, service, 0));
        }
        for r in 1..=spec.replicas {
            steps.extend(replica_steps(env, service, host.address, r));
        }
        if spec.role == Role::Web && !service.ports.is_empty() {
            routes.insert(name.clone(), service.ports.clone());
            switched.push(format!("{name} #{}", service.instance));
        }
    }
    if !switched.is_empty() {
        steps.extend(switch_steps(
            env,
            &format!("roll-{}", plan.number),
            switched.join(", "),
            site_conf(
                key,
                host.address,
                host.proxy_port,
                &route_list(env, &routes),
            ),
        ));
    }
    // Old web replicas go only once the proxy routes to the new ones:
    // until then a rollback finds them running and switches back to them.
    for service in host.services.iter().filter(|s| s.spec.role == Role::Web) {
        steps.extend(stop_steps(key, service, service.spec.drain_ms));
    }
    steps.extend(host.services.iter().map(|s| prune_step(key, s)));
    steps.push(forget_staged_step(key));
    ChangeSpec {
        title: format!("deploy {key} #{} on {}", plan.number, host.host),
        steps,
    }
}

/// Stopping the replicas a service ran before: drain (the proxy no longer
/// sends them requests, those in flight finish), then SIGTERM → grace →
/// SIGKILL through the supervisor. Undo starts them again.
pub(crate) fn stop_steps(key: &EnvKey, service: &ServicePlan, drain_ms: u64) -> Vec<Step> {
    match &service.previous {
        Some(old) => stop_placement(key, &service.name, old, &service.spec, drain_ms),
        None => Vec::new(),
    }
}

pub(crate) fn stop_placement(
    key: &EnvKey,
    name: &Part,
    old: &crate::inventory::Placement,
    spec: &crate::spec::Service,
    drain_ms: u64,
) -> Vec<Step> {
    let supervise = host_path(&format!("{BIN_DIR}/supervise"));
    let qold = host_path(&key.instance_dir(name, old.instance));
    let drain = if drain_ms > 0 {
        format!("sleep {} && ", seconds(drain_ms))
    } else {
        String::new()
    };
    (1..=old.replicas)
        .map(|r| {
            run(
                format!("stop {name} #{} replica {r}", old.instance),
                format!("{drain}{supervise} stop {qold} {r}"),
                Some(format!("{supervise} start {qold} {r}")),
                drain_ms + spec.stop_grace_ms + STOP_MARGIN_MS,
            )
        })
        .collect()
}
