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
use crate::scripts::{NGINX_CONF, PROXY, SUPERVISE};
use crate::spec::{Environment, Role};

/// How long fetching code or installing it may take.
const FETCH_TIMEOUT_MS: u64 = 600_000;
/// Margin over the grace period for a stop step.
const STOP_MARGIN_MS: u64 = 30_000;

/// A word for `/bin/sh`: single-quoted, quotes inside escaped.
pub fn sh_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// A host path as a shell word, under the host root the driver gives in
/// `$VIGIE_HOST_ROOT` (`/` on a real host).
fn host_path(path: &str) -> String {
    format!("\"${{VIGIE_HOST_ROOT%/}}\"{}", sh_quote(path))
}

fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn run(name: String, line: String, undo: Option<String>, timeout_ms: u64) -> Step {
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

fn file(name: String, path: String, content: String, mode: u32) -> Step {
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
    if env.cache.is_some() {
        vars.insert("CACHE_PREFIX".into(), env.key.cache_prefix());
    }
    for name in env.databases.keys() {
        let db = env.key.database(name);
        vars.insert(
            format!(
                "DATABASE_URL_{}",
                name.as_str().to_uppercase().replace('-', "_")
            ),
            format!("postgresql://{db}@/{db}"),
        );
    }
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

/// The change request that deploys `plan` on one host.
pub fn compile_host(env: &Environment, plan: &DeployPlan, host: &HostPlan) -> ChangeSpec {
    let key = &env.key;
    let stem = key.stem();
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
        file(
            "configure the proxy".into(),
            format!("{PROXY_DIR}/nginx.conf"),
            NGINX_CONF.into(),
            0o644,
        ),
        run(
            "start the proxy".into(),
            format!("{} ensure", host_path(&format!("{BIN_DIR}/proxy"))),
            None,
            60_000,
        ),
    ];
    let supervise = host_path(&format!("{BIN_DIR}/supervise"));
    let proxy = host_path(&format!("{BIN_DIR}/proxy"));

    // What the proxy routes to, service by service, updated as replicas switch.
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
    let route_list = |routes: &BTreeMap<Part, Vec<u16>>| -> Vec<(String, String, Vec<u16>)> {
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
    };

    let mut stops = Vec::new();
    let web_first = host.services.iter().filter(|s| s.spec.role == Role::Web);
    let workers = host.services.iter().filter(|s| s.spec.role == Role::Worker);
    for service in web_first.chain(workers) {
        let name = &service.name;
        let spec = &service.spec;
        let dir = key.instance_dir(name, service.instance);
        let qdir = host_path(&dir);
        let label = format!("{name} #{}", service.instance);

        steps.push(run(
            format!("fetch {label} ({})", spec.revision),
            format!(
                // A failed step is not undone: it cleans up after itself.
                "rm -rf {qdir} && mkdir -p {qdir} && git clone -q --no-checkout {repo} {qdir}/src && git -C {qdir}/src checkout -q --detach {rev} || {{ status=$?; rm -rf {qdir}; exit $status; }}",
                repo = sh_quote(&spec.repository),
                rev = sh_quote(&format!("{}^{{commit}}", spec.revision)),
            ),
            Some(format!("rm -rf {qdir}")),
            FETCH_TIMEOUT_MS,
        ));
        steps.push(file(
            format!("start command of {label}"),
            format!("{dir}/start"),
            format!("{}\n", spec.start),
            0o644,
        ));
        steps.push(file(
            format!("grace period of {label}"),
            format!("{dir}/stop_grace"),
            format!("{}\n", seconds(spec.stop_grace_ms)),
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

        if spec.role == Role::Worker {
            steps.extend(stop_steps(key, service, 0));
        }
        for r in 1..=spec.replicas {
            let port = service.ports.get((r - 1) as usize).copied();
            steps.push(file(
                format!("environment of {label} replica {r}"),
                format!("{dir}/replica-{r}/env"),
                env_file(env, service, host.address, r, port),
                0o600,
            ));
            steps.push(run(
                format!("start {label} replica {r}"),
                format!("{supervise} start {qdir} {r}"),
                Some(format!("{supervise} stop {qdir} {r}")),
                30_000,
            ));
            let (Some(port), Some(health)) = (port, &spec.health) else {
                continue;
            };
            steps.push(Step {
                name: format!("health of {label} replica {r}"),
                action: Action::Check {
                    probe: Probe::Http {
                        url: format!("http://{}:{port}{}", host.address, health.path),
                        status: 200,
                    },
                    retries: health.retries,
                    interval_ms: health.interval_ms,
                    timeout_ms: health.timeout_ms,
                },
            });
            // The new replica replaces the old one of the same rank.
            if let Some(ports) = routes.get_mut(name) {
                let rank = (r - 1) as usize;
                if rank < ports.len() {
                    ports[rank] = port;
                } else {
                    ports.push(port);
                }
                if r == spec.replicas {
                    ports.truncate(spec.replicas as usize);
                }
            }
            let tag = format!("{name}-{}-{r}", service.instance);
            steps.push(file(
                format!("proxy config for {label} replica {r}"),
                format!("{PROXY_DIR}/staged/{stem}.{tag}"),
                site_conf(key, host.address, host.proxy_port, &route_list(&routes)),
                0o644,
            ));
            steps.push(run(
                format!("switch the proxy to {label} replica {r}"),
                format!("{proxy} apply {stem} {tag}"),
                Some(format!("{proxy} back {stem} {tag}")),
                60_000,
            ));
        }
        if spec.role == Role::Web {
            stops.push((service, spec.drain_ms));
        }
    }
    // Old web replicas go only once every new one serves: until then a
    // rollback finds them running and the proxy switched back to them.
    for (service, drain_ms) in stops {
        steps.extend(stop_steps(key, service, drain_ms));
    }
    ChangeSpec {
        title: format!("deploy {key} #{} on {}", plan.number, host.host),
        steps,
    }
}

/// Stopping the replicas a service ran before: drain (the proxy no longer
/// sends them requests, those in flight finish), then SIGTERM → grace →
/// SIGKILL through the supervisor. Undo starts them again.
fn stop_steps(key: &EnvKey, service: &ServicePlan, drain_ms: u64) -> Vec<Step> {
    let Some(old) = &service.previous else {
        return Vec::new();
    };
    let supervise = host_path(&format!("{BIN_DIR}/supervise"));
    let qold = host_path(&key.instance_dir(&service.name, old.instance));
    let drain = if drain_ms > 0 {
        format!("sleep {} && ", seconds(drain_ms))
    } else {
        String::new()
    };
    (1..=old.replicas)
        .map(|r| {
            run(
                format!("stop {} #{} replica {r}", service.name, old.instance),
                format!("{drain}{supervise} stop {qold} {r}"),
                Some(format!("{supervise} start {qold} {r}")),
                drain_ms + service.spec.stop_grace_ms + STOP_MARGIN_MS,
            )
        })
        .collect()
}
