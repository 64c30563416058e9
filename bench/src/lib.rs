//! Vigie's benchmarks (not tests), run as `vigie bench …`: the `vigie`
//! binary hands its `bench` subcommand's [`Args`] to [`run`], so no library
//! crate of the tower carries benchmark code or the Redis client.
//! `vigie bench escalator` prints figures and the ratios the issues target;
//! `vigie bench crashpoints` is the storage's crash-point sweep, longer;
//! `agents`, `catalog` and `changes` drive a whole tower.

mod agents;
mod agents_sim;
mod catalog;
mod changes;
pub mod escalator;
mod history;
mod history_probe;
mod tower;

use std::process::{Command, ExitCode};

use crate::escalator::{self as bench, bench_server, Figure, Redis};
use clap::Subcommand;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Escalator against in-process LevelDB and Redis on loopback.
    Escalator {
        /// Operations per lock-step workload.
        #[arg(long, default_value_t = 20_000)]
        ops: u64,
        /// Skip the Redis reference (otherwise installed if missing).
        #[arg(long)]
        no_redis: bool,
    },
    /// Escalator's storage under a fault at every write and sync of a workload.
    Crashpoints {
        /// Writes in the workload (puts, deletes, batches).
        #[arg(long, default_value_t = 200)]
        writes: usize,
        /// Workload seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Inject at one call in this many (1: every call).
        #[arg(long, default_value_t = 1)]
        every: u64,
    },
    /// Agents over CURVE through the majordomo: fan-out, memory, CPU.
    Agents {
        /// Agents to connect.
        #[arg(long, default_value_t = 1_000)]
        hosts: usize,
        /// Agents per simulator process (0: as many as its descriptor
        /// limit allows).
        #[arg(long, default_value_t = 0)]
        per_process: usize,
        /// Also restart the tower under the connected agents (a
        /// reconnection storm) and time how long they take to come back.
        #[arg(long, alias = "storm")]
        restart: bool,
        /// Seconds the whole fleet may take to come back online after the
        /// restart (the target: under a minute); longer fails the
        /// benchmark.
        #[arg(long, default_value_t = 60)]
        back_within: u64,
        /// Milliseconds between two heartbeats of one agent (the agent's
        /// default is 500).
        #[arg(long, default_value_t = 500)]
        beat_ms: u64,
        /// Run simulated agents from this key file (started by the
        /// benchmark itself).
        #[arg(long, hide = true)]
        sim: Option<std::path::PathBuf>,
        /// The first agent of the file this simulator process runs
        /// (internal: set by the benchmark itself).
        #[arg(long, hide = true, default_value_t = 0)]
        sim_first: usize,
        /// How many agents of the file this simulator process runs
        /// (internal: set by the benchmark itself).
        #[arg(long, hide = true, default_value_t = 0)]
        sim_count: usize,
    },
    /// Onboarding: agent keys enrolled one by one, a CSV import, allocations.
    Catalog {
        /// Agent keys to enrol, one call each.
        #[arg(long, default_value_t = 10_000)]
        keys: usize,
        /// Clients enrolling at once (the provisioner enrols up to its
        /// `parallel` servers at once); 1: lock step.
        #[arg(long, default_value_t = 1)]
        clients: usize,
        /// Rows of the CSV to import.
        #[arg(long, default_value_t = 10_000)]
        rows: usize,
        /// Single-address allocations, one call each.
        #[arg(long, default_value_t = 1_000)]
        allocations: usize,
    },
    /// A long history against an empty tower: start-up, dispatch, status, audit.
    History {
        /// Finished changes (and audit records) to seed.
        #[arg(long, default_value_t = 1_000_000)]
        changes: u64,
        /// Samples of each latency.
        #[arg(long, default_value_t = 200)]
        samples: usize,
        /// Seconds to pause after seeding, before the referee starts.
        #[arg(long, default_value_t = 0)]
        pause: u64,
        /// Compact the seeded database whole before the referee starts.
        #[arg(long)]
        compact: bool,
    },
    /// Change requests: dispatch latency, one-host throughput, fan-out.
    Changes(crate::changes::Args),
}

fn crashpoints(writes: usize, seed: u64, every: u64) -> anyhow::Result<ExitCode> {
    use vigie_escalator::engine::faults::FaultMode;
    use vigie_escalator_tests::crashpoint;
    use vigie_escalator_tests::leveldb_subject::LevelDbSubject;
    let dir = tempfile::Builder::new().prefix("vigie-crash-").tempdir()?;
    let turns = crashpoint::workload(seed, writes.max(1));
    println!(
        "# vigie bench crashpoints --writes {writes} --seed {seed} --every {every}  ({} turns; modes fail, short, kill)",
        turns.len()
    );
    let t = std::time::Instant::now();
    let mut make = |name: &str| crashpoint::fresh_dir(dir.path(), name).map(LevelDbSubject::new);
    let s =
        crashpoint::sweep(&mut make, &turns, &FaultMode::ALL, every).map_err(anyhow::Error::msg)?;
    println!(
        "{} write/sync calls, {} runs in {:.1} s: {} acknowledged writes checked, {} unacknowledged found whole, {} torn tails cut",
        s.ops,
        s.runs,
        t.elapsed().as_secs_f64(),
        s.acknowledged,
        s.unacked_present,
        s.tails_cut
    );
    for (p, why) in s.failures.iter().take(20) {
        println!("FAILED at call {} ({:?}): {why}", p.at, p.mode);
    }
    println!("{} failed runs", s.failures.len());
    Ok(if s.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn show(f: &Figure) {
    println!(
        "{:<58} {:>12.0} ops/s  ({} ops in {:.3} s)",
        f.name,
        f.rate(),
        f.ops,
        f.secs
    );
}

fn ratio(label: &str, a: &Figure, b: &Figure) {
    println!("  ratio {label:<52} {:>8.2}x", a.rate() / b.rate());
}

fn ensure_redis() -> bool {
    if Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    println!(
        "redis-server missing: installing it from the OS packages (apt-get install redis-server)"
    );
    Command::new("apt-get")
        .args(["install", "-y", "-qq", "redis-server"])
        .status()
        .is_ok_and(|s| s.success())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.what {
        What::Agents {
            sim: Some(file),
            sim_first,
            sim_count,
            beat_ms,
            ..
        } => crate::agents_sim::simulate(&file, sim_first, sim_count, beat_ms)?,
        What::Agents {
            hosts,
            per_process,
            restart,
            back_within,
            beat_ms,
            ..
        } => crate::agents::run(crate::agents::Args {
            hosts: hosts.max(1),
            per_process,
            restart,
            back_within: std::time::Duration::from_secs(back_within),
            beat_ms,
        })?,
        What::Catalog {
            keys,
            clients,
            rows,
            allocations,
        } => crate::catalog::run(keys, clients, rows, allocations)?,
        What::History {
            changes,
            samples,
            pause,
            compact,
        } => {
            let settle = crate::history::Settle { pause, compact };
            return crate::history::run(changes, samples, settle);
        }
        What::Escalator { ops, no_redis } => return escalator(ops, no_redis),
        What::Crashpoints {
            writes,
            seed,
            every,
        } => return crashpoints(writes, seed, every),
        What::Changes(a) => crate::changes::run(a)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `vigie bench escalator`: the Escalator's workloads, then Redis's.
fn escalator(ops: u64, no_redis: bool) -> anyhow::Result<ExitCode> {
    // 64 writers on 4 driving threads: see `bench::durable`.
    let writer_threads = 4;
    let dir = tempfile::Builder::new().prefix("vigie-bench-").tempdir()?;
    println!("# vigie bench escalator --ops {ops}  (100-byte values; one run, same machine)");

    let (lp, lg) = bench::inprocess(&dir.path().join("inproc"), ops)?;
    let server = bench_server(&dir.path().join("grouped"), true)?;
    let (np, ng) = bench::lockstep(&server.endpoint, ops)?;
    let (pp, pg) = bench::pipelined(&server.endpoint, 16, 32, ops / 4)?;
    let d1 = bench::durable(&server.endpoint, 1, 1, ops / 10, "group commit")?;
    let d64 = bench::durable(
        &server.endpoint,
        64,
        writer_threads,
        (ops / 20).max(10),
        "group commit",
    )?;
    let st = vigie_escalator::Client::connect(&server.endpoint)?.stats()?;
    println!(
        "group commit: {} durable writes shared {} fdatasync calls ({:.1} writes per sync)",
        st.durable_writes,
        st.syncs,
        st.durable_writes as f64 / st.syncs.max(1) as f64
    );
    drop(server);
    let naive = bench_server(&dir.path().join("naive"), false)?;
    let n1 = bench::durable(&naive.endpoint, 1, 1, ops / 10, "one fdatasync per write")?;
    let n64 = bench::durable(
        &naive.endpoint,
        64,
        writer_threads,
        (ops / 200).max(5),
        "one fdatasync per write",
    )?;
    drop(naive);
    let floor = bench::zmq_echo_floor(ops)?;

    for f in [&lp, &lg, &np, &ng, &pp, &pg, &d1, &d64, &n1, &n64, &floor] {
        show(f);
    }
    println!("overhead of the network layer (in-process / escalator):");
    ratio("put, lock-step", &lp, &np);
    ratio("get, lock-step", &lg, &ng);
    ratio("put, 16 pipelined", &lp, &pp);
    ratio("get, 16 pipelined", &lg, &pg);
    println!("group commit (target: 64 writers >= 8x one-fsync-per-write):");
    ratio("64 writers grouped / 64 writers naive", &d64, &n64);
    ratio("64 writers grouped / 1 writer naive", &d64, &n1);
    ratio("1 writer grouped / 1 writer naive", &d1, &n1);

    if no_redis || !ensure_redis() {
        println!("redis reference skipped");
        return Ok(ExitCode::SUCCESS);
    }
    let r = Redis::start(&dir.path().join("redis"), false)?;
    let (rp, rg) = bench::redis_lockstep(&r, ops)?;
    let (rpp, rpg) = bench::redis_pipelined(&r, 16, 32, ops / 4)?;
    drop(r);
    let rd = Redis::start(&dir.path().join("redis-aof"), true)?;
    let rd1 = bench::redis_durable(&rd, 1, ops / 20)?;
    let rd64 = bench::redis_durable(&rd, 64, (ops / 200).max(10))?;
    drop(rd);
    for f in [&rp, &rg, &rpp, &rpg, &rd1, &rd64] {
        show(f);
    }
    println!("escalator / redis (target: lock-step >= 1.0x):");
    ratio("put lock-step", &np, &rp);
    ratio("bare libzmq echo lock-step / redis GET", &floor, &rg);
    ratio("escalator get lock-step / bare libzmq echo", &ng, &floor);
    ratio("get lock-step", &ng, &rg);
    ratio("put 16 pipelined", &pp, &rpp);
    ratio("get 16 pipelined", &pg, &rpg);
    ratio("durable put, 1 writer", &d1, &rd1);
    ratio("durable put, 64 writers", &d64, &rd64);
    Ok(ExitCode::SUCCESS)
}
