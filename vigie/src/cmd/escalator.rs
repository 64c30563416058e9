use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use vigie_escalator::{EscalatorError, ServerConfig};

use crate::runtime::{shutdown_flag, EXIT_CONFIG};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Data directory (created if missing; locked while the daemon runs).
    #[arg(long)]
    data: PathBuf,
    /// Endpoint to bind (repeatable): tcp://IP:PORT, tcp://IP:* or ipc://PATH.
    #[arg(long = "bind", default_value = super::DEFAULT_ESCALATOR)]
    binds: Vec<String>,
    /// One fdatasync per durable write instead of group commit (benchmarks).
    #[arg(long)]
    no_group_commit: bool,
    /// Most entries in one range reply page.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    page_entries: u32,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut cfg = ServerConfig::new(&args.data, args.binds);
    cfg.group_commit = !args.no_group_commit;
    cfg.page_entries = args.page_entries as usize;
    let shutdown = shutdown_flag()?;
    match vigie_escalator::serve(cfg, shutdown, None) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(EscalatorError::Zmq(e @ (zmq::Error::EINVAL | zmq::Error::EPROTONOSUPPORT))) => {
            eprintln!("vigie escalator: bad --bind endpoint: {e}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
        Err(e @ EscalatorError::Locked { .. }) => {
            eprintln!("vigie escalator: refusing to start: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e).context("escalator stopped on an error"),
    }
}
