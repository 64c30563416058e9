//! `vigie deployd`: the deploy daemon the launcher starts (runs the
//! deploys operators start, in the tower; see `vigie_deployd`).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;

use crate::runtime::shutdown_flag;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The referee's API.
    #[arg(long, default_value = super::DEFAULT_API)]
    api: String,
    /// The referee's PUB socket (the API client's other half).
    #[arg(long, default_value = super::DEFAULT_ORDERS)]
    orders: String,
    /// How often the referee is asked for rollouts and their changes, in ms.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
}

pub fn run(a: Args) -> anyhow::Result<ExitCode> {
    let cfg = vigie_deployd::DeploydConfig {
        api: a.api,
        orders: a.orders,
        poll: Duration::from_millis(a.poll_ms.max(20)),
    };
    vigie_deployd::run(cfg, shutdown_flag()?).context("deploy daemon stopped on an error")?;
    Ok(ExitCode::SUCCESS)
}
