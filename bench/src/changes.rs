//! `vigie bench changes`: dispatch latency, back-to-back throughput on one
//! host, and fan-out of one change to a fleet of simulated hosts. The
//! escalator, referee and fleet run on threads of this process over TCP
//! loopback; every state change is durably stored as in production.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::escalator::free_port;
use anyhow::Context;
use vigie_client::{ApiClient, Watcher};
use vigie_escalator::LocalServer;
use vigie_plug::{FleetConfig, PlugConfig};
use vigie_referee::RefereeConfig;
use vigie_wire::tower::{
    host_topic, ApiAnswer, ApiCall, Caller, ChangeState, ChangeView, Published, StepStatus,
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated hosts (noop driver) in the fleet.
    #[arg(long, default_value_t = 1_000)]
    pub hosts: usize,
    /// Dispatch latency samples.
    #[arg(long, default_value_t = 200)]
    pub samples: usize,
    /// One-step changes submitted back to back to one host.
    #[arg(long, default_value_t = 500)]
    pub back_to_back: usize,
    /// Also run the metrics daemon and scrape it every second (its
    /// cost on dispatch).
    #[arg(long)]
    pub scrape_metrics: bool,
    /// Alternate N rounds without and with the metrics daemon scraped
    /// every second, in this run, and print the medians' ratios.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub compare_metrics: usize,
    /// Keep Escalator's databases in this etcd (client URL; run it with
    /// --max-txn-ops 100000 --max-request-bytes 67108864).
    #[arg(long, value_name = "URL")]
    pub etcd: Option<String>,
    /// With --etcd: alternate N rounds on LevelDB and on etcd, in this
    /// run, and print the medians' ratios.
    #[arg(long, default_value_t = 0, value_name = "N", requires = "etcd")]
    pub compare_etcd: usize,
}

/// An escalator whose databases live in etcd, on a thread, under a prefix
/// of its own (each run starts empty).
struct EtcdEscalator {
    endpoint: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<(), vigie_escalator::EscalatorError>>>,
}

impl EtcdEscalator {
    fn start(data: &std::path::Path, etcd: &str) -> anyhow::Result<Self> {
        let endpoint = format!("tcp://127.0.0.1:{}", free_port()?);
        let mut cfg = vigie_escalator::ServerConfig::new(data, vec![endpoint.clone()]);
        let run = format!("bench/{}/{}/", std::process::id(), free_port()?);
        cfg.etcd = Some(vigie_escalator::EtcdStore {
            endpoints: vec![etcd.to_owned()],
            prefix: run.into_bytes(),
            limits: vigie_escalator::engine::TxnLimits {
                ops: 100_000,
                bytes: 64 << 20,
            },
            fence: None,
            timeout: Duration::from_secs(30),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || vigie_escalator::serve(cfg, flag, None));
        let c = vigie_escalator::Client::connect(&endpoint)?;
        c.ping()?;
        c.create("bench")?;
        Ok(Self {
            endpoint,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EtcdEscalator {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The escalator a measurement runs on (over LevelDB, or `etcd`) and its
/// endpoint; it stops when the box is dropped.
fn escalator(
    data: &std::path::Path,
    etcd: Option<&str>,
) -> anyhow::Result<(Box<dyn std::any::Any>, String)> {
    Ok(match etcd {
        Some(url) => {
            let e = EtcdEscalator::start(data, url)?;
            let ep = e.endpoint.clone();
            (Box::new(e), ep)
        }
        None => {
            let l = LocalServer::start(data, true)?;
            let ep = l.endpoint.clone();
            (Box::new(l), ep)
        }
    })
}

/// Alternates LevelDB and etcd rounds and prints the medians' ratios.
fn compare_etcd(a: &Args, etcd: &str) -> anyhow::Result<()> {
    let (mut leveldb, mut in_etcd) = (Vec::new(), Vec::new());
    for round in 0..a.compare_etcd {
        println!("## round {} of {}: LevelDB", round + 1, a.compare_etcd);
        leveldb.push(measure(a, false, None)?);
        println!("## round {} of {}: etcd", round + 1, a.compare_etcd);
        in_etcd.push(measure(a, false, Some(etcd))?);
    }
    println!(
        "# medians of {} alternated rounds: LevelDB | etcd ({etcd}) | etcd / LevelDB",
        a.compare_etcd
    );
    table(&leveldb, &in_etcd);
    Ok(())
}

/// One measurement's figures.
#[derive(Debug, Clone, Copy, Default)]
struct Figures {
    order_p50: Duration,
    order_p99: Duration,
    back_to_back: f64,
    fan_out: f64,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let a = Args {
        hosts: a.hosts.max(1),
        ..a
    };
    if let (Some(etcd), true) = (&a.etcd, a.compare_etcd > 0) {
        return compare_etcd(&a, etcd);
    }
    if a.compare_metrics == 0 {
        return measure(&a, a.scrape_metrics, a.etcd.as_deref()).map(drop);
    }
    // Alternated, so a machine that gets busier or quieter during the run
    // weighs on both sides alike.
    let mut without = Vec::new();
    let mut with = Vec::new();
    for round in 0..a.compare_metrics {
        println!(
            "## round {} of {}: without metrics",
            round + 1,
            a.compare_metrics
        );
        without.push(measure(&a, false, None)?);
        println!(
            "## round {} of {}: with metrics scraped every second",
            round + 1,
            a.compare_metrics
        );
        with.push(measure(&a, true, None)?);
    }
    println!(
        "# medians of {} alternated rounds: without metrics | with metrics scraped every 1 s | with / without",
        a.compare_metrics
    );
    table(&without, &with);
    Ok(())
}

/// The medians of two sides' rounds, and their ratios.
fn table(without: &[Figures], with: &[Figures]) {
    fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
        v.sort_by(|x, y| x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal));
        v[v.len() / 2]
    }
    let pick = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
    type Row = (&'static str, fn(&Figures) -> f64, &'static str);
    let rows: [Row; 4] = [
        (
            "submit -> order, p50 (ms)",
            |f| f.order_p50.as_secs_f64() * 1e3,
            "lower is better",
        ),
        (
            "submit -> order, p99 (ms)",
            |f| f.order_p99.as_secs_f64() * 1e3,
            "lower is better",
        ),
        (
            "back-to-back (changes/s)",
            |f| f.back_to_back,
            "higher is better",
        ),
        ("fan-out (hosts/s)", |f| f.fan_out, "higher is better"),
    ];
    for (name, f, better) in rows {
        let (x, y) = (pick(without, f), pick(with, f));
        println!(
            "{name:<28} {x:>10.2} | {y:>10.2} | ratio {:.3} ({better})",
            y / x
        );
    }
}

/// The metrics daemon on a thread, and a scraper asking it every second,
/// as a Prometheus would. The lifecycle stream is a PUB of our own that
/// stays quiet: the daemons' events cost the same with or without metrics
/// (the launcher forwards them anyway); what metrics add is the scrape.
fn start_metrics(
    ctx: &zmq::Context,
    dir: &std::path::Path,
    api: &str,
    orders: &str,
    escalator: &str,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(zmq::Socket, Vec<std::thread::JoinHandle<()>>)> {
    let (first, scraped) = std::sync::mpsc::channel();
    let lifecycle = ctx.socket(zmq::PUB)?;
    let ep = tcp()?;
    lifecycle.bind(&ep)?;
    let port = free_port()?;
    let cfg = vigie_metrics::MetricsConfig {
        bind: format!("http://127.0.0.1:{port}"),
        lifecycle: ep,
        api: api.to_owned(),
        orders: orders.to_owned(),
        escalator: escalator.to_owned(),
        database_dir: None,
        subscribe_wait: Duration::ZERO,
        token_file: dir.join("metrics.token"),
    };
    // Made here before the daemon reads it, then read back as Prometheus
    // does with its credentials_file.
    vigie_metrics::Token::ensure(&cfg.token_file)?;
    let bearer = std::fs::read_to_string(&cfg.token_file)?;
    let flag = stop.clone();
    let daemon = std::thread::spawn(move || {
        let _ = vigie_metrics::serve(cfg, flag);
    });
    let scraper = std::thread::spawn(move || {
        let url = format!("http://127.0.0.1:{port}/metrics");
        // Like Prometheus's scrape_timeout: a scrape never hangs the run.
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(2))
            .build();
        let mut scrapes = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let scrape = agent
                .get(&url)
                .set("Authorization", &format!("Bearer {}", bearer.trim()));
            if scrape.call().is_ok() {
                scrapes += 1;
                if scrapes == 1 {
                    let _ = first.send(());
                }
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        println!("metrics scraped {scrapes} times");
    });
    // Measure only once scrapes happen.
    scraped
        .recv_timeout(Duration::from_secs(30))
        .context("the metrics daemon never answered a scrape")?;
    Ok((lifecycle, vec![daemon, scraper]))
}

fn tcp() -> anyhow::Result<String> {
    Ok(format!("tcp://127.0.0.1:{}", free_port()?))
}

fn spec(steps: usize) -> anyhow::Result<vigie_wire::change::ChangeSpec> {
    let mut yaml = String::from("title: bench\nsteps:\n");
    for i in 0..steps {
        yaml.push_str(&format!("  - run: step {i}\n"));
    }
    Ok(vigie_changes::parse_change("bench.yml", &yaml)?)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

fn started(v: &ChangeView) -> bool {
    v.steps
        .first()
        .is_some_and(|s| s.status != StepStatus::Pending)
}

/// Waits for the update of `id` that satisfies `done`.
fn wait_for(
    w: &Watcher,
    id: &str,
    mut done: impl FnMut(&ChangeView) -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Some(v) = w.next(Duration::from_secs(1))? {
            if v.id == id && done(&v) {
                return Ok(());
            }
        }
    }
    anyhow::bail!("no update for {id} within 2 s")
}

/// What one measurement runs: an escalator, the referee and the fleet on
/// threads of this process (and the metrics daemon, scraped, if asked),
/// with a client straight to the referee. Everything stops with `stop`.
struct Rig {
    dir: tempfile::TempDir,
    esc: Box<dyn std::any::Any>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    metrics: Option<(zmq::Context, zmq::Socket)>,
    orders: String,
    client: ApiClient,
}

impl Rig {
    fn start(a: &Args, scrape_metrics: bool, etcd: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("vigie-bench-").tempdir()?;
        let (esc, endpoint) = escalator(&dir.path().join("escalator"), etcd)?;
        let (api, events, orders) = (tcp()?, tcp()?, tcp()?);
        let stop = Arc::new(AtomicBool::new(false));
        let cfg = RefereeConfig::new(&endpoint, &api, &events, &orders);
        let flag = stop.clone();
        let mut threads = vec![std::thread::spawn(move || {
            let _ = vigie_referee::serve(cfg, flag);
        })];
        let fleet_cfg = FleetConfig {
            plug: PlugConfig {
                events,
                orders: orders.clone(),
                heartbeat: Duration::from_millis(500),
                observe: None,
            },
            prefix: "sim-".into(),
            hosts: a.hosts,
            labels: Default::default(),
            stash: dir.path().join("stash"),
        };
        let flag = stop.clone();
        threads.push(std::thread::spawn(move || {
            let _ = vigie_plug::run_fleet(fleet_cfg, flag);
        }));
        let metrics = if scrape_metrics {
            let ctx = zmq::Context::new();
            let (sock, t) =
                start_metrics(&ctx, dir.path(), &api, &orders, &endpoint, stop.clone())?;
            threads.extend(t);
            Some((ctx, sock))
        } else {
            None
        };
        let caller = Caller::internal(vigie_wire::ids::TOWER_TENANT, "bench");
        let client = ApiClient::direct(&api, &orders, caller)?;
        Ok(Self {
            dir,
            esc,
            stop,
            threads,
            metrics,
            orders,
            client,
        })
    }

    /// A benchmark may poll: waits until the referee counts every host online.
    fn wait_online(&mut self, hosts: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let ApiAnswer::Hosts(h) = self.client.call(ApiCall::Hosts)? {
                if h.iter().filter(|h| h.online).count() == hosts {
                    return Ok(());
                }
            }
            anyhow::ensure!(Instant::now() < deadline, "the fleet did not come online");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
        drop(self.metrics);
        drop(self.esc);
        drop(self.dir);
    }
}

fn measure(a: &Args, scrape_metrics: bool, etcd: Option<&str>) -> anyhow::Result<Figures> {
    let mut rig = Rig::start(a, scrape_metrics, etcd)?;
    let figures = measure_on(&mut rig, a, scrape_metrics);
    rig.stop();
    figures
}

fn measure_on(rig: &mut Rig, a: &Args, scrape_metrics: bool) -> anyhow::Result<Figures> {
    rig.wait_online(a.hosts)?;
    println!(
        "# vigie bench changes --hosts {} --samples {} --back-to-back {}{}",
        a.hosts,
        a.samples,
        a.back_to_back,
        if scrape_metrics {
            " --scrape-metrics"
        } else {
            ""
        }
    );
    println!(
        "(escalator, referee and a fleet of {} noop plugs on threads of one process, TCP loopback)",
        a.hosts
    );
    let watcher = Watcher::connect(&rig.orders, &[])?;
    let (order_p50, order_p99) = dispatch(rig, &watcher, a)?;
    Ok(Figures {
        order_p50,
        order_p99,
        back_to_back: back_to_back(&mut rig.client, &watcher, a.back_to_back)?,
        fan_out: fan_out(&mut rig.client, &watcher)?,
    })
}

/// Dispatch latency on idle hosts: submit to the order on the wire, and
/// to the first step started, stored and published (p50, p99 of the first).
fn dispatch(rig: &mut Rig, watcher: &Watcher, a: &Args) -> anyhow::Result<(Duration, Duration)> {
    let ctx = zmq::Context::new();
    let observer = ctx.socket(zmq::SUB)?;
    observer.connect(&rig.orders)?;
    observer.set_rcvtimeo(30_000)?;
    // Every sampled host's topic at once, before the warm-up: a
    // subscription made just before its sample could miss the order.
    let hosts: Vec<String> = (0..a.samples.min(a.hosts))
        .map(|i| format!("sim-{}", 1 + i))
        .collect();
    for host in &hosts {
        observer.set_subscribe(&host_topic(host))?;
    }
    let one = spec(1)?;
    let client = &mut rig.client;
    // A SUB socket misses what is published before its subscription reaches
    // the publisher: warm up until the watcher sees a change end.
    loop {
        let id = submit_one(client, &one, "sim-1")?;
        if wait_for(watcher, &id, |v| v.state.is_final()).is_ok() {
            break;
        }
    }
    let mut to_order = Vec::new();
    let mut to_started = Vec::new();
    for i in 0..a.samples {
        let host = &hosts[i % hosts.len()];
        let t0 = Instant::now();
        let id = submit_one(client, &one, host)?;
        order_seen(&observer, &id)?;
        to_order.push(t0.elapsed());
        // One update may say both "started" and "final": record the first
        // update showing the start, then wait for the end.
        let mut start = None;
        wait_for(watcher, &id, |v| {
            if start.is_none() && started(v) {
                start = Some(t0.elapsed());
            }
            v.state.is_final()
        })?;
        to_started.push(start.context("never started")?);
    }
    to_order.sort();
    to_started.sort();
    println!(
        "submit -> order on the wire (idle host):        p50 {:>8.2?}  p99 {:>8.2?}  ({} samples)",
        pct(&to_order, 0.5),
        pct(&to_order, 0.99),
        a.samples
    );
    println!(
        "submit -> first step started, stored, published: p50 {:>8.2?}  p99 {:>8.2?}",
        pct(&to_started, 0.5),
        pct(&to_started, 0.99)
    );
    Ok((pct(&to_order, 0.5), pct(&to_order, 0.99)))
}

/// Waits for the order of change `id` on the wire (skipping what else the
/// sampled hosts' topics carry: acknowledgements of earlier reports).
fn order_seen(observer: &zmq::Socket, id: &str) -> anyhow::Result<()> {
    loop {
        let parts = observer.recv_multipart(0).context("no order seen")?;
        let Some(frame) = parts.get(1) else { continue };
        if let Ok(Published::Order(o)) = vigie_wire::decode::<Published>(frame) {
            if o.change == id {
                return Ok(());
            }
        }
    }
}

/// Submits `spec` to one host: the change's id.
fn submit_one(
    client: &mut ApiClient,
    spec: &vigie_wire::change::ChangeSpec,
    host: &str,
) -> anyhow::Result<String> {
    let v = client.changes(ApiCall::Submit {
        spec: spec.clone(),
        target: host.into(),
    })?;
    Ok(v.first().context("no change")?.id.clone())
}

/// `n` one-step changes submitted back to back to one host: changes/s.
fn back_to_back(client: &mut ApiClient, watcher: &Watcher, n: usize) -> anyhow::Result<f64> {
    let one = spec(1)?;
    let t0 = Instant::now();
    let mut last = String::new();
    for _ in 0..n {
        last = submit_one(client, &one, "sim-1")?;
    }
    let submitted = t0.elapsed();
    wait_for(watcher, &last, |v| v.state.is_final())?;
    let e = t0.elapsed();
    println!(
        "back-to-back one-step changes on one host:      {:>8.0} changes/s  ({n} in {e:.2?}; submitting took {submitted:.2?})",
        n as f64 / e.as_secs_f64(),
    );
    Ok(n as f64 / e.as_secs_f64())
}

/// One 3-step change to every host: hosts/s until all are final.
fn fan_out(client: &mut ApiClient, watcher: &Watcher) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let views = client.changes(ApiCall::Submit {
        spec: spec(3)?,
        target: "sim-*".into(),
    })?;
    let submitted = t0.elapsed();
    let mut open: std::collections::HashSet<String> = views.into_iter().map(|v| v.id).collect();
    let n = open.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut ok = 0;
    while !open.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} changes still open",
            open.len()
        );
        if let Some(v) = watcher.next(Duration::from_secs(1))? {
            if v.state.is_final() && open.remove(&v.id) && v.state == ChangeState::Succeeded {
                ok += 1;
            }
        }
    }
    let e = t0.elapsed();
    let rate = n as f64 / e.as_secs_f64();
    println!(
        "one 3-step change to {n} hosts:                 {e:>8.2?} until all done, {rate:>8.0} hosts/s  ({ok} succeeded; the submit itself took {submitted:.2?})",
    );
    println!("peer reference: Choria, one RPC to 50,000 nodes in about 16 s = 3,125 nodes/s");
    println!("  ratio vigie fan-out / choria: {:.2}x", rate / 3_125.0);
    Ok(rate)
}
