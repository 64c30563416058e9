//! `vigie metrics`: the metrics daemon the launcher starts (Prometheus
//! text format over HTTP; see `vigie_metrics`).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use vigie_metrics::{MetricsConfig, MetricsError};

use crate::runtime::{shutdown_flag, EXIT_CONFIG};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to serve `/metrics`: http://IP:PORT (port 0: any free port).
    #[arg(long, default_value = "http://127.0.0.1:9464")]
    bind: String,
    /// The launcher's lifecycle PUB socket (every daemon's events).
    #[arg(long)]
    lifecycle: String,
    #[command(flatten)]
    ep: Endpoints,
    /// Escalator's database dir, whose size is reported.
    #[arg(long)]
    database_dir: Option<PathBuf>,
    /// The bearer token every scrape must carry, made there (0600) if
    /// missing; the launcher gives DATA/keys/metrics.token.
    #[arg(long)]
    token_file: PathBuf,
}

/// The sockets a scrape reads gauges from.
#[derive(Debug, clap::Args)]
struct Endpoints {
    /// Escalator, for its counters (`stats`).
    #[arg(long, default_value = super::DEFAULT_ESCALATOR)]
    escalator: String,
    /// The referee's API, for hosts and queue depths at each scrape.
    #[arg(long, default_value = super::DEFAULT_API)]
    api: String,
    /// The referee's PUB socket (the API client's other half).
    #[arg(long, default_value = super::DEFAULT_ORDERS)]
    orders: String,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = MetricsConfig {
        bind: a.bind,
        lifecycle: a.lifecycle,
        api: a.ep.api,
        orders: a.ep.orders,
        escalator: a.ep.escalator,
        database_dir: a.database_dir,
        subscribe_wait: vigie_metrics::SUBSCRIBE_WAIT,
        token_file: a.token_file,
    };
    let shutdown = shutdown_flag()?;
    match vigie_metrics::serve(cfg, shutdown) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e @ (MetricsError::Endpoint(_) | MetricsError::Token { .. })) => {
            super::out::esay!("vigie metrics: {e}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
        Err(e) => Err(e).context("metrics daemon stopped on an error"),
    }
}
