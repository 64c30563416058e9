//! Each child's command line, from the setup: the endpoints it binds or
//! reaches, its files in the data dir, and what the setup says of it (the
//! referee gets the hosts' labels and the label rules, a plug its driver's
//! options).

use std::path::Path;

use crate::setup::{HostSetup, Setup};

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// `lease`: an HA tower's, fencing its databases in etcd.
pub(crate) fn escalator(setup: &Setup, lease: Option<i64>) -> Vec<String> {
    let e = &setup.endpoints;
    let db = path(&setup.data_dir.join("escalator"));
    let mut args = strings(&["escalator", "--data", &db, "--bind", &e.escalator]);
    if let (Some(ha), Some(lease)) = (&setup.ha, lease) {
        args.extend(ha.escalator_args(lease));
    }
    args
}

/// The referee binds these; the majordomo reaches the referee through them.
fn tower_endpoints(setup: &Setup, cmd: &str) -> Vec<String> {
    let e = &setup.endpoints;
    strings(&[
        cmd,
        "--escalator",
        &e.escalator,
        "--api",
        &e.api,
        "--events",
        &e.events,
        "--orders",
        &e.orders,
    ])
}

/// The shares of `limits:`, as one JSON argument (the referee keeps most,
/// the majordomo the knocks').
fn limits(setup: &Setup) -> String {
    serde_json::to_string(&setup.limits).unwrap_or_default()
}

pub(crate) fn referee(setup: &Setup) -> Vec<String> {
    let data = &setup.data_dir;
    let mut args = tower_endpoints(setup, "referee");
    args.extend(["--lifecycle".into(), setup.endpoints.lifecycle.clone()]);
    args.extend([
        "--admin-key-file".into(),
        path(&crate::keys::admin_public_path(data)),
        // Tenants' SSH keys, made and read here and by the provisioner.
        "--ssh-keys".into(),
        path(&data.join("provisioner")),
    ]);
    // The setup's labels reach the referee from the launcher, not from the
    // plugs: a host does not choose its own labels.
    for h in &setup.hosts {
        let labels: Vec<String> = h.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.extend([
            "--setup-host".into(),
            format!("{}:{}", h.id, labels.join(",")),
        ]);
    }
    for (hosts, labels) in &setup.rules {
        let rule = serde_json::json!({ "hosts": hosts, "labels": labels });
        args.extend(["--label-rule".into(), rule.to_string()]);
    }
    args.extend(["--limits".into(), limits(setup)]);
    // Deploy secrets: the tower's key for them at rest (made by the
    // referee at its first start), and each local plug's sealing key.
    args.extend([
        "--secrets-key".into(),
        path(&data.join("keys").join("secrets.key")),
    ]);
    for h in &setup.hosts {
        let public = vigie_majordomo::keys::public_path(&crate::keys::plug_seal_key(data, &h.id));
        args.extend(["--seal-key".into(), format!("{}={}", h.id, path(&public))]);
    }
    args
}

pub(crate) fn plug(setup: &Setup, h: &HostSetup) -> Vec<String> {
    let e = &setup.endpoints;
    let mut args = strings(&[
        "plug", "--host", &h.id, "--driver", &h.driver, "--events", &e.events, "--orders",
        &e.orders,
    ]);
    args.extend([
        "--state".into(),
        path(&setup.data_dir.join("plugs").join(&h.id)),
        "--seal-key".into(),
        path(&crate::keys::plug_seal_key(&setup.data_dir, &h.id)),
    ]);
    for (k, v) in &h.options {
        // Setup keys are snake_case, flags kebab-case.
        args.extend([format!("--{}", k.replace('_', "-")), v.clone()]);
    }
    for (k, v) in &h.labels {
        args.extend(["--label".into(), format!("{k}={v}")]);
    }
    args
}

pub(crate) fn majordomo(setup: &Setup) -> Vec<String> {
    let mut args = tower_endpoints(setup, "majordomo");
    args.extend(["--bind".into(), setup.endpoints.majordomo.clone()]);
    args.extend(["--limits".into(), limits(setup)]);
    args.extend([
        "--secret-key".into(),
        path(&setup.data_dir.join("keys").join("tower.secret")),
    ]);
    args
}

pub(crate) fn metrics(setup: &Setup) -> Vec<String> {
    let (e, data) = (&setup.endpoints, &setup.data_dir);
    strings(&[
        "metrics",
        "--bind",
        &e.metrics,
        "--lifecycle",
        &e.lifecycle,
        "--escalator",
        &e.escalator,
        "--api",
        &e.api,
        "--orders",
        &e.orders,
        "--database-dir",
        &path(&data.join("escalator").join("db")),
        "--token-file",
        &path(&data.join("keys").join("metrics.token")),
    ])
}

/// The deploy daemon: the referee it records every rollout's phase in.
pub(crate) fn deployd(setup: &Setup) -> Vec<String> {
    let e = &setup.endpoints;
    strings(&["deployd", "--api", &e.api, "--orders", &e.orders])
}

pub(crate) fn provisioner(setup: &Setup) -> Vec<String> {
    let (e, pr) = (&setup.endpoints, &setup.provisioner);
    let mut args = strings(&[
        "provisioner",
        "--api",
        &e.api,
        "--orders",
        &e.orders,
        "--data",
        &path(&setup.data_dir),
        "--parallel",
        &pr.parallel.to_string(),
        "--install-dir",
        &pr.install_dir,
        "--agent-root",
        &pr.agent_root,
        "--service",
        &pr.service,
        "--connect-timeout-ms",
        &pr.connect_timeout.as_millis().to_string(),
    ]);
    if let Some(t) = &pr.tower {
        args.extend(["--tower".into(), t.clone()]);
    }
    for n in &pr.networks {
        args.extend(["--network".into(), n.to_string()]);
    }
    args
}

pub(crate) fn web(setup: &Setup) -> Vec<String> {
    let e = &setup.endpoints;
    let mut args = strings(&[
        "web", "--bind", &e.web, "--api", &e.api, "--orders", &e.orders,
    ]);
    match &e.web_tls {
        Some((cert, key)) => args.extend(strings(&["--tls-cert", cert, "--tls-key", key])),
        None => args.extend(["--keys".into(), path(&setup.data_dir.join("keys"))]),
    }
    args
}
