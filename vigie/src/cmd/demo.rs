//! `vigie demo`: the first thing a newcomer runs. For now it starts an
//! Escalator on a throwaway data dir and shows the client at work.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::Context;
use vigie_escalator::{Client, RangeSpec, ServerConfig};

use crate::runtime::shutdown_flag;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop after the sample instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new().prefix("vigie-demo-").tempdir()?;
    let endpoint = format!("ipc://{}/escalator.sock", dir.path().display());
    let shutdown = shutdown_flag()?;
    let cfg = ServerConfig::new(dir.path().join("data"), vec![endpoint.clone()]);
    let flag = shutdown.clone();
    let server = std::thread::spawn(move || vigie_escalator::serve(cfg, flag, None));

    let client = Client::connect(&endpoint)?;
    client.ping().context("escalator did not come up")?;
    println!(
        "escalator up at {endpoint} (data in {})",
        dir.path().join("data").display()
    );
    let hosts = client.create("demo")?.prefixed(b"host/");
    let t = Instant::now();
    for (id, role) in [("web-1", "web"), ("web-2", "web"), ("db-1", "database")] {
        hosts.put(id.as_bytes(), role.as_bytes())?;
        println!("put   host/{id} = {role}  (durable: fdatasync'ed before the reply)");
    }
    println!("3 durable puts in {:.2?}", t.elapsed());
    let got = hosts.get(b"web-2")?.unwrap_or_default();
    println!("get   host/web-2 -> {}", String::from_utf8_lossy(&got));
    let mut batch = hosts.batch();
    batch.put(b"web-3", b"web").delete(b"db-1");
    batch.write()?;
    println!("batch put host/web-3, delete host/db-1 (all or nothing)");
    let spec = RangeSpec {
        prefix: Some(b"web-".to_vec()),
        reverse: true,
        ..RangeSpec::default()
    };
    println!("range prefix=web- reverse:");
    for e in hosts.iter(spec) {
        let e = e?;
        let v = e.value.unwrap_or_default();
        println!(
            "      {} = {}",
            String::from_utf8_lossy(&e.key),
            String::from_utf8_lossy(&v)
        );
    }
    let stats = client.stats()?;
    println!(
        "server: {} requests, {} durable writes, {} fdatasync calls",
        stats.requests, stats.durable_writes, stats.syncs
    );
    if args.exit {
        shutdown.store(true, Ordering::Relaxed);
    } else {
        println!("serving at {endpoint}; try `vigie kv --escalator {endpoint} range demo`; Ctrl-C to stop");
    }
    server
        .join()
        .map_err(|_| anyhow::anyhow!("escalator thread panicked"))??;
    println!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}
