//! `vigie bench history`: what a long history costs. One run, two towers
//! on threads of this process (escalator, referee, a small fleet of noop
//! plugs over TCP loopback): an empty one, and one whose Escalator was
//! seeded with N finished changes and N audit records, written straight
//! in the referee's stored format in large batches before its referee
//! starts. On each: referee start-up, dispatch latency, `status` of the
//! oldest finished change, `audit --limit 100`, then start-up again after
//! a restart. The ratios are seeded / empty.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::escalator::free_port;
use crate::history_probe::{
    compact_all, ended, recent_reads, sample, slow_line, tables, waited_ms, Reads, Sample,
};
use anyhow::Context;
use vigie_client::ApiClient;
use vigie_escalator::{Database, LocalServer};
use vigie_plug::{FleetConfig, PlugConfig};
use vigie_referee::{AuditChain, RefereeConfig, TOWER_TENANT};
use vigie_wire::tower::{
    host_topic, ApiAnswer, ApiCall, AuditFilter, AuditRecord, Caller, ChangeState, ChangeView,
    Published,
};

/// Simulated hosts of each tower.
const HOSTS: usize = 10;

/// One tower's figures.
#[derive(Debug, Default)]
struct Figures {
    start: Duration,
    dispatch_p50: Duration,
    dispatch_p99: Duration,
    status_p50: Duration,
    status_p99: Duration,
    audit_p50: Duration,
    audit_p99: Duration,
    restart: Duration,
    /// Each dispatch, `status` and `audit` sample, with whether LevelDB
    /// compacted meanwhile.
    dispatch_samples: Vec<Sample>,
    status_samples: Vec<Sample>,
    audit_samples: Vec<Sample>,
    /// Whether LevelDB compacted during the restart's start-up.
    restart_compacted: bool,
    /// What a start reads of finished changes, straight from Escalator.
    recent: Reads,
}

/// What to do between the seeding and the referee's start.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settle {
    /// Seconds to pause (Escalator idle).
    pub pause: u64,
    /// Compact the whole database (Escalator stopped meanwhile).
    pub compact: bool,
}

pub fn run(history: u64, samples: usize, settle: Settle) -> anyhow::Result<std::process::ExitCode> {
    let samples = samples.max(1);
    println!(
        "# vigie bench history --changes {history} --samples {samples} --pause {}{}",
        settle.pause,
        if settle.compact { " --compact" } else { "" }
    );
    println!("(escalator, referee and {HOSTS} noop plugs on threads of one process, TCP loopback)");
    let empty = measure(0, samples, settle)?;
    let seeded = measure(history, samples, settle)?;
    println!(
        "{:<36} {:>12} {:>14} {:>8}",
        "figure", "empty", "seeded", "ratio"
    );
    let row = |name: &str, a: Duration, b: Duration| {
        let r = b.as_secs_f64() / a.as_secs_f64().max(1e-9);
        println!("{name:<36} {a:>12.2?} {b:>14.2?} {r:>7.2}x");
    };
    row("referee start-up (first answer)", empty.start, seeded.start);
    row(
        "dispatch p50 (submit -> order)",
        empty.dispatch_p50,
        seeded.dispatch_p50,
    );
    row(
        "dispatch p99 (submit -> order)",
        empty.dispatch_p99,
        seeded.dispatch_p99,
    );
    row(
        "status of the oldest change p50",
        empty.status_p50,
        seeded.status_p50,
    );
    row(
        "status of the oldest change p99",
        empty.status_p99,
        seeded.status_p99,
    );
    row("audit --limit 100 p50", empty.audit_p50, seeded.audit_p50);
    row("audit --limit 100 p99", empty.audit_p99, seeded.audit_p99);
    row(
        "referee start-up after a restart",
        empty.restart,
        seeded.restart,
    );
    explain("empty", &empty);
    explain("seeded", &seeded);
    Ok(std::process::ExitCode::SUCCESS)
}

/// The measurements behind a tower's figures.
fn explain(name: &str, f: &Figures) {
    let over = Duration::from_millis(20);
    println!(
        "{name}: {}",
        slow_line("dispatch", &f.dispatch_samples, over)
    );
    println!("{name}: {}", slow_line("status", &f.status_samples, over));
    println!("{name}: {}", slow_line("audit", &f.audit_samples, over));
    let r = &f.recent;
    println!(
        "{name}: a start's reads of the last finished changes, straight from Escalator: \
         done/ scan {:.2?}, {} change records {:.2?} one get each, {:.2?} pipelined; \
         LevelDB compacted during the restart: {}",
        r.scanned, r.n, r.gets, r.pipelined, f.restart_compacted
    );
}

fn tcp() -> anyhow::Result<String> {
    Ok(format!("tcp://127.0.0.1:{}", free_port()?))
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

/// `n` finished changes and `n` audit records, with the counters a
/// referee keeps beside them, in batches of at most `BATCH` writes.
fn seed(db: &Database, n: u64) -> anyhow::Result<()> {
    const BATCH: usize = 6_000;
    let t0 = Instant::now();
    let mut chain = AuditChain::default();
    let mut batch = db.batch();
    for seq in 1..=n {
        let id = format!("c{seq}");
        let view = ChangeView {
            id: id.clone(),
            host: "old-1".into(),
            seq,
            tenant: TOWER_TENANT.into(),
            operator: "bench".into(),
            title: format!("old change {seq}"),
            state: ChangeState::Succeeded,
            steps: Vec::new(),
            submitted_ms: seq,
            updated_ms: seq,
            waiting: None,
        };
        // The referee's `ChangeRecord { view, accepted, spec_id }`, which
        // its encoding stores as this triple: the seeded tower's `status`
        // reads it back, so a format that drifted fails the benchmark.
        let rec = (view, true, id.clone());
        batch.put(
            format!("change/{id}").as_bytes(),
            &vigie_wire::encode(&rec)?,
        );
        batch.put(format!("done/{seq:020}").as_bytes(), id.as_bytes());
        let audit = chain.seal(AuditRecord {
            seq: 0,
            at_ms: seq,
            tenant: TOWER_TENANT.into(),
            operator: "bench".into(),
            host: "old-1".into(),
            change: id,
            step: None,
            action: "finished".into(),
            summary: format!("old change {seq}"),
            exit_code: Some(0),
            before_digest: None,
            after_digest: None,
            output_tail: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
            tenant_seq: seq,
        });
        batch.put(
            format!("audit/rec/{seq:020}").as_bytes(),
            &vigie_wire::encode(&audit)?,
        );
        if batch.len() >= BATCH {
            std::mem::replace(&mut batch, db.batch()).write()?;
        }
        if seq % 100_000 == 0 {
            println!("  {seq} seeded after {:.2?}", t0.elapsed());
        }
    }
    batch.put(b"meta/next_seq", &(n + 1).to_be_bytes());
    batch.put(b"audit/head", &chain.encode_head());
    let tenant = format!("audit/tenant/{TOWER_TENANT}");
    batch.put(tenant.as_bytes(), &n.to_be_bytes());
    batch.write()?;
    let e = t0.elapsed();
    println!(
        "seeded {n} finished changes and {n} audit records in {e:.2?} ({:.0} changes/s)",
        n as f64 / e.as_secs_f64()
    );
    Ok(())
}

/// A referee on its thread, stopped by its own flag.
struct Referee {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<(), vigie_referee::RefereeError>>,
}

impl Referee {
    fn start(cfg: RefereeConfig) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || vigie_referee::serve(cfg, flag));
        Self { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

/// From a referee's start until it answers a first call.
fn first_answer(client: &mut ApiClient, t0: Instant) -> anyhow::Result<Duration> {
    client.call(ApiCall::Hosts)?;
    Ok(t0.elapsed())
}

fn measure(history: u64, samples: usize, settle: Settle) -> anyhow::Result<Figures> {
    let dir = tempfile::Builder::new().prefix("vigie-bench-").tempdir()?;
    let data = dir.path().join("escalator");
    let db_dir = data.join("db").join("tower");
    let mut esc = LocalServer::start(&data, true)?;
    if history > 0 {
        let client = vigie_escalator::Client::connect(&esc.endpoint)?;
        // A large batch may wait behind the storage's compactions.
        client.set_timeouts(Duration::from_secs(10), Duration::from_secs(600));
        let db = client.create("tower")?.durable(false);
        seed(&db, history)?;
        esc = settled(esc, &data, &db_dir, settle)?;
    }
    let (api, events, orders) = (tcp()?, tcp()?, tcp()?);
    let cfg = RefereeConfig::new(&esc.endpoint, &api, &events, &orders);
    let mut f = Figures::default();
    let caller = Caller::internal(TOWER_TENANT, "bench");
    let t0 = Instant::now();
    let referee = Referee::start(cfg.clone());
    let mut client = ApiClient::direct(&api, &orders, caller.clone())?;
    f.start = first_answer(&mut client, t0)?;
    let stop_fleet = Arc::new(AtomicBool::new(false));
    let fleet_cfg = FleetConfig {
        plug: PlugConfig {
            events: events.clone(),
            orders: orders.clone(),
            heartbeat: Duration::from_millis(500),
            observe: None,
        },
        prefix: "sim-".into(),
        hosts: HOSTS,
        labels: Default::default(),
        stash: dir.path().join("stash"),
    };
    let flag = stop_fleet.clone();
    let fleet = std::thread::spawn(move || vigie_plug::run_fleet(fleet_cfg, flag));
    let result = figures(&mut client, &orders, &db_dir, samples, &mut f);
    let restart = result.and_then(|()| {
        referee.stop();
        f.recent = recent_of(&esc.endpoint)?;
        let before = tables(&db_dir);
        let t0 = Instant::now();
        let referee = Referee::start(cfg);
        let mut client = ApiClient::direct(&api, &orders, caller)?;
        f.restart = first_answer(&mut client, t0)?;
        f.restart_compacted = tables(&db_dir) != before;
        referee.stop();
        Ok(())
    });
    stop_fleet.store(true, Ordering::Relaxed);
    let _ = fleet.join();
    restart?;
    drop(esc);
    Ok(f)
}

/// What a start reads of finished changes, read straight from Escalator.
fn recent_of(endpoint: &str) -> anyhow::Result<Reads> {
    let db = vigie_escalator::Client::connect(endpoint)?.create("tower")?;
    let next = db
        .get(b"meta/next_seq")?
        .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
        .map_or(1, u64::from_be_bytes);
    recent_reads(&db, next, 1_000)
}

/// The pause and the compaction asked for after the seeding: Escalator
/// runs again on the same data when it returns.
fn settled(
    esc: LocalServer,
    data: &std::path::Path,
    db_dir: &std::path::Path,
    settle: Settle,
) -> anyhow::Result<LocalServer> {
    if settle.pause > 0 {
        let before = tables(db_dir);
        std::thread::sleep(Duration::from_secs(settle.pause));
        let changed = tables(db_dir) != before;
        println!(
            "paused {}s after seeding: LevelDB's tables changed meanwhile: {changed} ({} tables)",
            settle.pause,
            before.len()
        );
    }
    if !settle.compact {
        return Ok(esc);
    }
    drop(esc);
    let before = tables(db_dir).len();
    let took = compact_all(db_dir)?;
    println!(
        "compacted the seeded database in {took:.2?} ({before} tables before, {} after)",
        tables(db_dir).len()
    );
    Ok(LocalServer::start(data, true)?)
}

/// Dispatch, status and audit latencies on a started tower.
fn figures(
    client: &mut ApiClient,
    orders: &str,
    db_dir: &std::path::Path,
    samples: usize,
    f: &mut Figures,
) -> anyhow::Result<()> {
    // A benchmark may poll: wait until the referee counts every host online.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let ApiAnswer::Hosts(h) = client.call(ApiCall::Hosts)? {
            if h.iter().filter(|h| h.online).count() == HOSTS {
                break;
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "the fleet did not come online");
        std::thread::sleep(Duration::from_millis(50));
    }
    let spec = vigie_changes::parse_change("bench.yml", "title: bench\nsteps:\n  - run: one\n")?;
    let ctx = zmq::Context::new();
    let observer = ctx.socket(zmq::SUB)?;
    observer.connect(orders)?;
    observer.set_rcvtimeo(30_000)?;
    for i in 0..HOSTS {
        observer.set_subscribe(&host_topic(&format!("sim-{}", 1 + i)))?;
    }
    // A SUB socket misses what is published before its subscriptions
    // reach the publisher.
    std::thread::sleep(Duration::from_millis(500));
    let mut first = None;
    let mut to_order = Vec::new();
    for i in 0..samples {
        let host = format!("sim-{}", 1 + i % HOSTS);
        let before = tables(db_dir);
        let wait0 = waited_ms();
        let t0 = Instant::now();
        let v = client.changes(ApiCall::Submit {
            spec: spec.clone(),
            target: host.clone(),
        })?;
        let id = v.first().context("no change")?.id.clone();
        loop {
            let parts = observer.recv_multipart(0).context("no order seen")?;
            let frame = parts.get(1).context("no frame")?;
            if let Ok(Published::Order(o)) = vigie_wire::decode::<Published>(frame) {
                if o.change == id {
                    break;
                }
            }
        }
        to_order.push(t0.elapsed());
        f.dispatch_samples.push(ended(db_dir, t0, &before, wait0));
        first.get_or_insert(id);
        // The host runs one change at a time: let this one end.
        std::thread::sleep(Duration::from_millis(20));
    }
    to_order.sort();
    f.dispatch_p50 = pct(&to_order, 0.5);
    f.dispatch_p99 = pct(&to_order, 0.99);
    reads(client, first, db_dir, samples, f)
}

/// `status` of the oldest change and `audit --limit 100`, `samples` each.
fn reads(
    client: &mut ApiClient,
    first: Option<String>,
    db_dir: &std::path::Path,
    samples: usize,
    f: &mut Figures,
) -> anyhow::Result<()> {
    // The oldest change: read from the store when history is long.
    let oldest = match client.call(ApiCall::Status {
        change: Some("c1".into()),
        limit: 0,
    }) {
        Ok(ApiAnswer::Changes(v)) if !v.is_empty() => "c1".to_owned(),
        _ => first.context("no change")?,
    };
    let mut status = Vec::new();
    let mut audit = Vec::new();
    for _ in 0..samples {
        let (v, s) = sample(db_dir, || {
            Ok(client.changes(ApiCall::Status {
                change: Some(oldest.clone()),
                limit: 0,
            })?)
        })?;
        status.push(s.took);
        f.status_samples.push(s);
        anyhow::ensure!(v.len() == 1, "status of {oldest}: {v:?}");
        let (a, s) = sample(db_dir, || {
            Ok(client.call(ApiCall::Audit {
                host: None,
                change: None,
                limit: 100,
                filter: Box::new(AuditFilter::default()),
            })?)
        })?;
        audit.push(s.took);
        f.audit_samples.push(s);
        anyhow::ensure!(
            matches!(&a, ApiAnswer::Audit(v) if !v.is_empty() && v.len() <= 100),
            "audit --limit 100: {a:?}"
        );
    }
    status.sort();
    audit.sort();
    (f.status_p50, f.status_p99) = (pct(&status, 0.5), pct(&status, 0.99));
    (f.audit_p50, f.audit_p99) = (pct(&audit, 0.5), pct(&audit, 0.99));
    Ok(())
}
