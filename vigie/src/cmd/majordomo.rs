//! `vigie majordomo`, `vigie agent` and `vigie keys`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Subcommand;
use vigie_majordomo::agent::AgentConfig;
use vigie_majordomo::{keys, MajordomoConfig, MajordomoError};
use vigie_plug::{FileJournal, Plug};

use crate::runtime::{shutdown_flag, EXIT_CONFIG};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The front door (the only endpoint open to the network).
    #[arg(long, default_value = super::DEFAULT_MAJORDOMO)]
    bind: String,
    #[command(flatten)]
    ep: super::TowerEndpoints,
    /// The tower's secret key (made by `vigie start` in DATA/keys).
    #[arg(long)]
    secret_key: PathBuf,
    /// The setup's `limits:` as JSON (the knocks' budget is read here).
    #[arg(long, value_parser = super::parse_limits, default_value = "{}")]
    limits: vigie_wire::limits::Shares,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = MajordomoConfig {
        bind: a.bind,
        escalator: a.ep.escalator,
        api: a.ep.api,
        events: a.ep.events,
        orders: a.ep.orders,
        secret_key: a.secret_key,
        knocks_per_minute: a.limits.knocks_per_minute,
        knocks_per_source: a.limits.knocks_per_source,
    };
    match vigie_majordomo::serve(cfg, shutdown_flag()?) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ MajordomoError::Key { .. }) => {
            super::out::esay!("vigie majordomo: {e}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
        Err(e) => Err(e).context("majordomo stopped on an error"),
    }
}

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The tower's majordomo, e.g. tcp://192.0.2.1:7110; a tower group's front
    /// doors comma-separated (the agent follows the active one).
    #[arg(long)]
    tower: String,
    /// The tower's public key: @FILE (a copy of DATA/keys/tower.public),
    /// 64 hex digits, or Z85.
    #[arg(long, allow_hyphen_values = true, value_name = "KEY",
          value_parser = super::key_arg::parse_key)]
    tower_key: String,
    /// This agent's secret key file (`vigie keys gen`).
    #[arg(long)]
    key: PathBuf,
    /// The host this agent runs.
    #[arg(long)]
    host: String,
    /// The host's root directory.
    #[arg(long)]
    root: PathBuf,
    /// The agent's own state: journal and undo stash.
    #[arg(long)]
    state: PathBuf,
    /// A label the host reports, `key=value` (repeatable; shown, not trusted).
    #[arg(long = "label", value_parser = super::plug::parse_label)]
    labels: Vec<(String, String)>,
    /// Milliseconds between heartbeats.
    #[arg(long, default_value_t = 500)]
    heartbeat_ms: u64,
    /// Milliseconds between two host metrics samples.
    #[arg(long, default_value_t = super::plug::DEFAULT_METRICS_EVERY_MS)]
    metrics_every_ms: u64,
    #[command(flatten)]
    logs: super::plug::LogsArgs,
}

/// Exit status of an agent the tower cut off (revoked or refused).
const EXIT_REFUSED: u8 = 3;

pub fn agent(a: AgentArgs) -> anyhow::Result<ExitCode> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        super::out::esay!("vigie agent: {what}: {e}");
        Ok(ExitCode::from(EXIT_CONFIG))
    };
    if let Err(e) = vigie_changes::validate_host_id(&a.host) {
        return bad("--host", &e);
    }
    let Some(tower_key) = keys::from_z85(&a.tower_key) else {
        return bad("--tower-key", &"not a Z85 public key (40 characters)");
    };
    let pair = match keys::read_secret(&a.key) {
        Ok(p) => p,
        Err(e) => return bad("--key", &e),
    };
    let driver = match vigie_drivers::LocalDriver::new(&a.root) {
        Ok(d) => d,
        Err(e) => return bad("--root", &e),
    };
    // Like a plug's: private, whatever the umask the host work runs under.
    for dir in [a.state.clone(), a.state.join("stash")] {
        vigie_escalator::ensure_private_dir(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let journal = FileJournal::open(&a.state.join("journal"))?;
    let observe = super::plug::observe(&a.state, &a.root, a.metrics_every_ms, &a.logs)?;
    let driver = driver.with_output(observe.logs.clone());
    let plug = Plug::new(
        &a.host,
        a.labels.into_iter().collect(),
        Box::new(driver),
        Box::new(journal),
        &a.state.join("stash"),
    )
    .with_logs(observe.logs.clone())
    // The agent's CURVE key is an X25519 key: its secrets are sealed for it.
    .with_opener(vigie_plug::opener::Opener::new(pair.secret));
    let cfg = AgentConfig {
        tower: a.tower,
        tower_key,
        keys: pair,
        heartbeat: Duration::from_millis(a.heartbeat_ms.max(10)),
        max_refusals: 3,
        observe: Some(observe),
    };
    match vigie_majordomo::agent::run(cfg, plug, shutdown_flag()?) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ (MajordomoError::Refused(..) | MajordomoError::Revoked)) => {
            super::out::esay!("vigie agent: {e}; what this agent deployed keeps running");
            Ok(ExitCode::from(EXIT_REFUSED))
        }
        Err(e) => Err(e).context("agent stopped on an error"),
    }
}

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    op: KeysOp,
}

#[derive(Debug, Subcommand)]
enum KeysOp {
    /// Make a Curve25519 key pair: FILE (secret, 0600) and FILE.pub.
    Gen {
        /// The secret key file to write (refused if it exists).
        #[arg(long)]
        out: PathBuf,
    },
}

pub fn keys(a: KeysArgs) -> anyhow::Result<ExitCode> {
    let KeysOp::Gen { out } = a.op;
    let pair = keys::write_new(&out)?;
    println!("{}", pair.public_z85());
    super::out::esay!(
        "secret key in {} (keep it private), public key in {}",
        out.display(),
        keys::public_path(&out).display()
    );
    Ok(ExitCode::SUCCESS)
}
