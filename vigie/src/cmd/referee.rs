//! `vigie referee`: the referee daemon's entry point.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use vigie_referee::RefereeConfig;

use crate::runtime::shutdown_flag;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    ep: super::TowerEndpoints,
    /// Milliseconds without a heartbeat before a host is offline.
    #[arg(long, default_value_t = 3_000)]
    host_timeout_ms: u64,
    /// Milliseconds before an unacknowledged order is sent again.
    #[arg(long, default_value_t = 1_000)]
    resend_ms: u64,
    /// The admin operator's public key file: at the first start (no
    /// operator yet), that operator is made with every permission.
    #[arg(long)]
    admin_key_file: Option<std::path::PathBuf>,
    /// A host of the setup file and its labels, `ID:k=v,k=v` (repeat):
    /// registered or relabelled at start. Labels come from here and from
    /// operators, never from what a plug announces.
    #[arg(long = "setup-host", value_parser = vigie_referee::parse_setup_host)]
    setup_hosts: Vec<(String, vigie_wire::tower::Labels)>,
    /// A label rule of the setup file, as JSON `{"hosts": SELECTOR,
    /// "labels": {k: v}}` (repeat, in order): applied to every host when it
    /// registers, setup hosts and hosts that come later alike.
    #[arg(long = "label-rule", value_parser = parse_label_rule)]
    label_rules: Vec<vigie_referee::LabelRule>,
    /// The setup's `limits:` as JSON (each field optional): the shares of
    /// the tower's bounded resources.
    #[arg(long, value_parser = super::parse_limits, default_value = "{}")]
    limits: vigie_wire::limits::Shares,
    /// Where tenants' SSH keys for provisioning are made and read
    /// (DATA/provisioner, shared with the provisioner): `vigie servers
    /// ssh-key` asks the referee for its tenant's public key.
    #[arg(long)]
    ssh_keys: Option<std::path::PathBuf>,
    /// The launcher's lifecycle PUB: the referee keeps its daemons' states
    /// (`vigie tower status`, why a plug's host is offline).
    #[arg(long)]
    lifecycle: Option<String>,
    /// The tower's key for deploy secrets at rest (DATA/keys/secrets.key),
    /// made at the first start; without it, secrets are refused.
    #[arg(long)]
    secrets_key: Option<std::path::PathBuf>,
    /// `HOST=FILE`: a setup host's public sealing key (Z85 file), its
    /// secrets sealed for it (repeatable).
    #[arg(long = "seal-key", value_parser = parse_seal_key)]
    seal_keys: Vec<(String, std::path::PathBuf)>,
}

fn parse_seal_key(text: &str) -> Result<(String, std::path::PathBuf), String> {
    let (host, path) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected HOST=FILE"))?;
    Ok((host.to_owned(), path.into()))
}

fn parse_label_rule(text: &str) -> Result<vigie_referee::LabelRule, String> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        hosts: String,
        labels: vigie_wire::tower::Labels,
    }
    let r: Rule = serde_json::from_str(text).map_err(|e| format!("{text:?}: {e}"))?;
    vigie_referee::LabelRule::new(&r.hosts, r.labels)
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = RefereeConfig::new(&a.ep.escalator, &a.ep.api, &a.ep.events, &a.ep.orders);
    cfg.host_timeout = Duration::from_millis(a.host_timeout_ms);
    cfg.resend_after = Duration::from_millis(a.resend_ms);
    cfg.setup_hosts = a.setup_hosts;
    cfg.label_rules = a.label_rules;
    cfg.limits = a.limits;
    cfg.ssh_keys = a.ssh_keys;
    cfg.lifecycle = a.lifecycle;
    cfg.secrets_key = a.secrets_key;
    cfg.seal_keys = a.seal_keys;
    if let Some(path) = &a.admin_key_file {
        match std::fs::read_to_string(path) {
            Ok(text) => cfg.admin_key = Some(text.trim().to_owned()),
            Err(e) => {
                super::out::esay!("vigie referee: --admin-key-file {}: {e}", path.display());
                return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
            }
        }
    }
    vigie_referee::serve(cfg, shutdown_flag()?).context("referee stopped on an error")?;
    Ok(ExitCode::SUCCESS)
}
