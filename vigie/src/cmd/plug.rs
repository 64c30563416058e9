//! `vigie plug` (one host's executor, a daemon) and `vigie fleet` (many
//! simulated plugs behind one pair of sockets).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use vigie_drivers::LocalDriver;
use vigie_plug::{FileJournal, FleetConfig, Plug, PlugConfig};
use vigie_wire::tower::Labels;

use crate::runtime::{shutdown_flag, EXIT_CONFIG};

#[derive(Debug, clap::Args)]
pub struct Endpoints {
    /// The referee's PULL endpoint.
    #[arg(long, default_value = super::DEFAULT_EVENTS)]
    events: String,
    /// The referee's PUB endpoint.
    #[arg(long, default_value = super::DEFAULT_ORDERS)]
    orders: String,
    /// Milliseconds between heartbeats.
    #[arg(long, default_value_t = 500)]
    heartbeat_ms: u64,
}

impl Endpoints {
    fn config(&self) -> PlugConfig {
        PlugConfig {
            events: self.events.clone(),
            orders: self.orders.clone(),
            heartbeat: Duration::from_millis(self.heartbeat_ms.max(10)),
            observe: None,
        }
    }
}

/// Milliseconds between two host metrics samples (plugs and agents).
pub const DEFAULT_METRICS_EVERY_MS: u64 = 10_000;

/// How much of the state dir's disk the host's log store may take.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LogsArgs {
    /// MiB the host's log store (STATE/logs) may hold, every source
    /// together, the oldest dropped first [default: 64, at most a quarter of
    /// the state dir's filesystem].
    #[arg(long)]
    logs_budget_mib: Option<u64>,
    /// MiB of free space on the state dir's filesystem that logs never
    /// take: the journal's room [default: 16, at most a quarter of the
    /// filesystem].
    #[arg(long)]
    logs_reserve_mib: Option<u64>,
}

impl LogsArgs {
    fn budget(&self, dir: &std::path::Path) -> vigie_plug::LogBudget {
        let mib = |v: Option<u64>| v.map(|m| m.saturating_mul(1024 * 1024));
        vigie_plug::LogBudget::for_dir(dir, mib(self.logs_budget_mib), mib(self.logs_reserve_mib))
    }
}

/// The host's log store (`STATE/logs`, private) and what the observer
/// needs; the local driver copies the steps' output into the store.
pub fn observe(
    state: &std::path::Path,
    root: &std::path::Path,
    metrics_every_ms: u64,
    budget: &LogsArgs,
) -> anyhow::Result<vigie_plug::ObserverConfig> {
    let dir = state.join("logs");
    vigie_escalator::ensure_private_dir(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let logs = std::sync::Arc::new(vigie_plug::LogStore::open_with(&dir, budget.budget(&dir))?);
    Ok(vigie_plug::ObserverConfig {
        root: root.to_path_buf(),
        logs,
        metrics_every: Duration::from_millis(metrics_every_ms.max(100)),
        heal: Default::default(),
    })
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// This host's id.
    #[arg(long)]
    host: String,
    /// How steps touch the host: `local` (a root directory) or `noop`.
    #[arg(long, default_value = "local")]
    driver: String,
    /// The host's root directory (local driver: every path stays inside).
    #[arg(long, required_if_eq("driver", "local"))]
    root: Option<PathBuf>,
    /// The plug's own state: journal and undo stash (not inside the root).
    #[arg(long)]
    state: PathBuf,
    /// The secret key (Z85 file) deploy secrets are sealed for: made by
    /// the launcher for each setup host; without it, secrets are refused.
    #[arg(long)]
    seal_key: Option<PathBuf>,
    /// A label, `key=value` (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Milliseconds between two host metrics samples.
    #[arg(long, default_value_t = DEFAULT_METRICS_EVERY_MS)]
    metrics_every_ms: u64,
    #[command(flatten)]
    logs: LogsArgs,
    #[command(flatten)]
    endpoints: Endpoints,
}

pub fn parse_label(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("label {s:?} is not key=value")),
    }
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    if let Err(e) = vigie_changes::validate_host_id(&a.host) {
        super::out::esay!("vigie plug: --host: {e}");
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    // The plug works under the host's umask: its own state is made private
    // explicitly (the journal and stash hold file contents in clear).
    for dir in [a.state.clone(), a.state.join("stash")] {
        vigie_escalator::ensure_private_dir(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let observe = match &a.root {
        Some(root) if a.driver == "local" => {
            Some(observe(&a.state, root, a.metrics_every_ms, &a.logs)?)
        }
        _ => None,
    };
    let driver: Box<dyn vigie_drivers::Driver> = match (a.driver.as_str(), &a.root, &observe) {
        ("noop", _, _) => Box::new(vigie_drivers::NoopDriver),
        ("local", Some(root), o) => match LocalDriver::new(root) {
            Ok(d) => match o {
                Some(o) => Box::new(d.with_output(o.logs.clone())),
                None => Box::new(d),
            },
            Err(e) => {
                super::out::esay!("vigie plug: --root {}: {e}", root.display());
                return Ok(ExitCode::from(EXIT_CONFIG));
            }
        },
        (other, _, _) => {
            super::out::esay!(
                "vigie plug: --driver {other:?}: unknown (known: {})",
                vigie_drivers::DRIVERS.join(", ")
            );
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let journal = FileJournal::open(&a.state.join("journal"))?;
    let labels: Labels = a.labels.into_iter().collect();
    let mut plug = Plug::new(
        &a.host,
        labels,
        driver,
        Box::new(journal),
        &a.state.join("stash"),
    );
    if let Some(path) = &a.seal_key {
        match vigie_plug::opener::Opener::read(path) {
            Ok(o) => plug = plug.with_opener(o),
            Err(e) => {
                super::out::esay!("vigie plug: --seal-key {e}");
                return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
            }
        }
    }
    let mut cfg = a.endpoints.config();
    if let Some(o) = observe {
        plug = plug.with_logs(o.logs.clone());
        cfg.observe = Some(o);
    }
    vigie_plug::run(cfg, plug, shutdown_flag()?).context("plug stopped on an error")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// How many simulated hosts.
    #[arg(long, default_value_t = 100)]
    hosts: usize,
    /// Host ids are PREFIX1, PREFIX2, ...
    #[arg(long, default_value = "sim-")]
    prefix: String,
    /// A label every simulated host reports, `key=value` (repeatable).
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    #[command(flatten)]
    endpoints: Endpoints,
}

/// Simulated hosts (noop driver, in-memory journal) in one process.
pub fn fleet(a: FleetArgs) -> anyhow::Result<ExitCode> {
    let stash = tempfile::Builder::new().prefix("vigie-fleet-").tempdir()?;
    let cfg = FleetConfig {
        plug: a.endpoints.config(),
        prefix: a.prefix,
        hosts: a.hosts,
        labels: a.labels.into_iter().collect(),
        stash: stash.path().to_path_buf(),
    };
    vigie_plug::run_fleet(cfg, shutdown_flag()?).context("fleet stopped on an error")?;
    Ok(ExitCode::SUCCESS)
}
