//! `vigie escalator`: the key-value daemon, and `vigie escalator repair`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use vigie_escalator::engine::{EngineError, Fence, TxnLimits};
use vigie_escalator::{EscalatorError, EtcdStore, ServerConfig};

use crate::runtime::{shutdown_flag, EXIT_CONFIG};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// Data directory (created if missing; locked while the daemon runs).
    #[arg(long, required = true)]
    data: Option<PathBuf>,
    /// Endpoint to bind (repeatable): tcp://IP:PORT, tcp://IP:* or ipc://PATH.
    #[arg(long = "bind", default_value = super::DEFAULT_ESCALATOR)]
    binds: Vec<String>,
    /// One fdatasync per durable write instead of group commit (benchmarks).
    #[arg(long)]
    no_group_commit: bool,
    /// Most entries in one range reply page.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..))]
    page_entries: u32,
    /// Keep the databases in etcd, at this member's client URL
    /// (http://HOST:PORT; repeatable), instead of LevelDB (an HA tower).
    #[arg(long = "etcd", value_name = "URL")]
    etcd: Vec<String>,
    /// With --etcd: the tower group's prefix of every key.
    #[arg(long, default_value = "vigie/")]
    etcd_prefix: String,
    /// With --etcd: the cluster's --max-txn-ops (a bigger batch is refused).
    #[arg(long, default_value_t = 128)]
    etcd_max_txn_ops: usize,
    /// With --etcd: the cluster's --max-request-bytes.
    #[arg(long, default_value_t = 1536 << 10)]
    etcd_max_request_bytes: usize,
    /// With --etcd: write only while this election key is held by
    /// --fence-lease (the active tower's lease, hex).
    #[arg(long, requires = "fence_lease")]
    fence_key: Option<String>,
    /// The lease of --fence-key (hex, as etcdctl shows it).
    #[arg(long, requires = "fence_key")]
    fence_lease: Option<String>,
}

/// The etcd store of `--etcd`, if given.
fn etcd_store(args: &Args) -> anyhow::Result<Option<EtcdStore>> {
    if args.etcd.is_empty() {
        return Ok(None);
    }
    let fence = match (&args.fence_key, &args.fence_lease) {
        (Some(key), Some(lease)) => Some(Fence {
            key: key.as_bytes().to_vec(),
            lease: i64::from_str_radix(lease.trim_start_matches("0x"), 16)
                .with_context(|| format!("--fence-lease {lease:?} is not a hex lease id"))?,
        }),
        _ => None,
    };
    Ok(Some(EtcdStore {
        endpoints: args.etcd.clone(),
        prefix: args.etcd_prefix.as_bytes().to_vec(),
        limits: TxnLimits {
            ops: args.etcd_max_txn_ops,
            bytes: args.etcd_max_request_bytes,
        },
        fence,
        timeout: std::time::Duration::from_secs(10),
    }))
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Salvage the intact records of damaged logs (the daemon refuses to
    /// start on them); each damaged original is kept as NAME.corrupt.
    Repair {
        /// The data directory (the daemon must be stopped).
        #[arg(long)]
        data: PathBuf,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Action::Repair { data }) = args.action {
        return repair(&data);
    }
    let etcd = etcd_store(&args)?;
    let data = args.data.context("--data is required")?;
    let mut cfg = ServerConfig::new(&data, args.binds);
    cfg.etcd = etcd;
    cfg.group_commit = !args.no_group_commit;
    cfg.page_entries = args.page_entries as usize;
    let shutdown = shutdown_flag()?;
    match vigie_escalator::serve(cfg, shutdown, None) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(EscalatorError::Zmq(e @ (zmq::Error::EINVAL | zmq::Error::EPROTONOSUPPORT))) => {
            super::out::esay!("vigie escalator: bad --bind endpoint: {e}");
            Ok(ExitCode::from(EXIT_CONFIG))
        }
        Err(e @ EscalatorError::Locked { .. }) => {
            super::out::esay!("vigie escalator: refusing to start: {e}");
            Ok(ExitCode::FAILURE)
        }
        Err(EscalatorError::Engine(e @ EngineError::Corrupt { .. })) => {
            tracing::error!(event = "storage_corrupt", error = %e);
            super::out::esay!(
                "vigie escalator: refusing to start: {e} (vigie escalator repair --data {})",
                data.display()
            );
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e).context("escalator stopped on an error"),
    }
}

fn repair(data: &std::path::Path) -> anyhow::Result<ExitCode> {
    let report =
        vigie_escalator::repair(data).with_context(|| format!("repairing {}", data.display()))?;
    for r in &report.repaired {
        super::out::say!(
            "{}: rewritten with its {} intact records; original kept as {}",
            r.file.display(),
            r.records_kept,
            r.original.display()
        );
        for (offset, why) in &r.skipped {
            super::out::say!("  skipped damage at byte {offset}: {why}");
        }
    }
    for c in &report.tails_cut {
        super::out::say!(
            "{}: torn tail of {} bytes cut (an unacknowledged write)",
            c.file.display(),
            c.dropped
        );
    }
    super::out::say!(
        "{} databases open cleanly: {}",
        report.databases.len(),
        report.databases.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
