//! `vigie bench agents`: a fleet of simulated agents, each with its own
//! Curve25519 key and its own CURVE connection to the majordomo, against a
//! real tower started by the launcher (separate processes, so their memory
//! and CPU can be read from /proc). The agents run in as many simulator
//! processes as their descriptor limit needs (`bench_agents_sim`).
//! Measures connect + handshake time, a 3-step change to every agent, the
//! tower's memory per connected agent, every process's CPU, and with
//! `--restart` how long the fleet takes to come back after a tower restart.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use vigie_client::ApiClient;
use vigie_majordomo::keys::KeyPair;
use vigie_wire::tower::{ApiAnswer, ApiCall, Caller, ChangeState, Published, ALL_CHANGES_TOPIC};

use crate::agents_sim::{write_keys, FDS_PER_AGENT};
pub(super) use crate::tower::{cpu_ticks, rss_kib, sched_ms, BenchTower};

/// What `vigie bench agents` is asked.
#[derive(Debug, Clone, Copy)]
pub struct Args {
    pub hosts: usize,
    /// Agents per simulator process; 0: as many as its descriptor limit
    /// allows.
    pub per_process: usize,
    /// Also restart the tower under the connected fleet.
    pub restart: bool,
    /// How long the fleet may take to come back after the restart.
    pub back_within: Duration,
    /// Between two heartbeats of one agent.
    pub beat_ms: u64,
}

/// The simulator processes. Dropping them kills them (and closing their
/// stdin would end them anyway): a benchmark that fails leaves none.
struct Sims {
    children: Vec<(Child, Option<ChildStdin>)>,
    /// Each simulator's latest `sim_progress`: agents that heard from the
    /// tower, agents that took an incarnation.
    progress: Arc<Mutex<Vec<[u64; 2]>>>,
}

impl Sims {
    fn start(
        keys: &std::path::Path,
        hosts: usize,
        per: usize,
        beat_ms: u64,
    ) -> anyhow::Result<Self> {
        let mut sims = Self {
            children: Vec::new(),
            progress: Arc::default(),
        };
        let mut outs = Vec::new();
        for first in (0..hosts).step_by(per.max(1)) {
            let count = per.min(hosts - first);
            let mut child = Command::new(std::env::current_exe()?)
                .args(["bench", "agents", "--sim"])
                .arg(keys)
                .args([
                    "--sim-first",
                    &first.to_string(),
                    "--sim-count",
                    &count.to_string(),
                    "--beat-ms",
                    &beat_ms.to_string(),
                ])
                // Dies with the benchmark even if it is SIGKILLed.
                .env(
                    vigie_launcher::PARENT_PID_ENV,
                    std::process::id().to_string(),
                )
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()?;
            let stdin = child.stdin.take();
            outs.push(child.stdout.take().context("stdout")?);
            sims.children.push((child, stdin));
        }
        if let Ok(mut p) = sims.progress.lock() {
            p.resize(outs.len(), [0, 0]);
        }
        // Each says its descriptor limit on its first line, once its
        // agents are connecting, then how far they got every 2 s.
        for (i, out) in outs.into_iter().enumerate() {
            let mut out = BufReader::new(out);
            let mut line = String::new();
            out.read_line(&mut line)?;
            anyhow::ensure!(!line.is_empty(), "simulator {} ended early", i + 1);
            println!("simulator {}: {}", i + 1, line.trim());
            let progress = sims.progress.clone();
            std::thread::spawn(move || follow(out, i, &progress));
        }
        Ok(sims)
    }

    /// Agents that heard from the tower and agents that took an
    /// incarnation, in all simulators.
    fn progress(&self) -> [u64; 2] {
        self.progress.lock().map_or([0, 0], |p| {
            p.iter().fold([0, 0], |s, x| [s[0] + x[0], s[1] + x[1]])
        })
    }

    fn pids(&self) -> Vec<u32> {
        self.children.iter().map(|(c, _)| c.id()).collect()
    }

    fn tell(&mut self, line: &str) -> anyhow::Result<()> {
        for (_, stdin) in &mut self.children {
            if let Some(s) = stdin {
                writeln!(s, "{line}")?;
            }
        }
        Ok(())
    }
}

/// Reads a simulator's progress lines until it ends.
fn follow(out: BufReader<std::process::ChildStdout>, i: usize, progress: &Mutex<Vec<[u64; 2]>>) {
    for line in out.lines().map_while(Result::ok) {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        let (Some(heard), Some(inc)) = (v["heard"].as_u64(), v["incarnated"].as_u64()) else {
            continue;
        };
        if let Ok(mut p) = progress.lock() {
            if let Some(slot) = p.get_mut(i) {
                *slot = [heard, inc];
            }
        }
    }
}

impl Drop for Sims {
    fn drop(&mut self) {
        for (child, stdin) in &mut self.children {
            drop(stdin.take());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Until the referee counts `hosts` agents online (and the majordomo has
/// seen `connected` first messages). Prints the curve every 5 s; on a
/// timeout, says what the tower logged on the way.
fn wait_online(
    api: &mut ApiClient,
    tower: &BenchTower,
    sims: &Sims,
    hosts: usize,
    connected: u64,
    within: Duration,
) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let deadline = t + within;
    let mut online = 0;
    let mut said = t;
    loop {
        if let ApiAnswer::Hosts(h) = api.call(ApiCall::Hosts)? {
            online = h.iter().filter(|h| h.online).count();
        }
        let seen = tower.heard.connected.load(Ordering::Relaxed);
        if online >= hosts && seen >= connected {
            return Ok(t.elapsed());
        }
        // The curve, not only its end: where a fleet stalls shows here.
        if said.elapsed() >= Duration::from_secs(5) {
            said = Instant::now();
            let [heard, incarnated] = sims.progress();
            println!(
                "  {:>5.1} s: {seen} connected, {online} online; the agents: {heard} heard from the tower, {incarnated} took an incarnation; load {}",
                t.elapsed().as_secs_f64(),
                loadavg()
            );
        }
        if Instant::now() >= deadline {
            println!("tower events: {}", tower.heard.events_said());
            anyhow::bail!(
                "the agents did not all come online ({online} of {hosts}, {seen} connected)"
            );
        }
        // Each poll lists every host: at 10,000 a tenth of a second
        // apart it was a good part of the referee's work (BENCHMARKS.md).
        std::thread::sleep(Duration::from_millis((hosts as u64 / 10).clamp(100, 1_000)));
    }
}

fn register(api: &mut ApiClient, hosts: usize) -> anyhow::Result<Vec<(String, KeyPair)>> {
    let t = Instant::now();
    let mut pairs = Vec::with_capacity(hosts);
    for i in 1..=hosts {
        let pair = KeyPair::generate();
        let host = format!("sim-{i}");
        api.call(ApiCall::KeyAdd {
            host: host.clone(),
            public: pair.public_z85(),
        })?;
        pairs.push((host, pair));
    }
    println!("registered {hosts} agent keys in {:.2?}", t.elapsed());
    Ok(pairs)
}

/// Agents per simulator process: as many as our descriptor limit allows
/// unless asked. Says the limits and the plan.
fn plan(a: Args, tower: &BenchTower) -> anyhow::Result<usize> {
    let limit = vigie_launcher::fdlimit::raise();
    let per = match a.per_process {
        0 => usize::try_from(limit.agents_max(FDS_PER_AGENT))?.max(1),
        n => n,
    };
    println!(
        "# vigie bench agents --hosts {} --beat-ms {}; load {}",
        a.hosts,
        a.beat_ms,
        loadavg()
    );
    println!(
        "(tower: launcher, escalator, referee, majordomo as processes; agents: {} CURVE connections, each its own key, noop driver, in {} simulator processes of at most {per}: descriptor limit {} soft / {} hard, {FDS_PER_AGENT} per agent; the majordomo says it holds up to {} agents)",
        a.hosts,
        a.hosts.div_ceil(per),
        limit.soft,
        limit.hard,
        tower.heard.agents_max.load(Ordering::Relaxed)
    );
    Ok(per)
}

/// The tower's processes, the launcher among them.
fn tower_pids(t: &BenchTower) -> Vec<(String, u32)> {
    t.pids
        .iter()
        .map(|(n, p)| (n.clone(), *p))
        .chain([("launcher".to_owned(), t.launcher_pid())])
        .collect()
}

fn rss_each(p: &[(String, u32)]) -> Vec<(String, u64)> {
    p.iter().map(|(n, p)| (n.clone(), rss_kib(*p))).collect()
}

/// What the tower's processes and the simulators gained with the agents.
fn memory(before: &[(String, u64)], pids: &[(String, u32)], sims: &[(String, u32)], hosts: usize) {
    let after = rss_each(pids);
    let sum = |v: &[(String, u64)]| -> u64 { v.iter().map(|(_, k)| k).sum() };
    let (b, a) = (sum(before), sum(&after));
    let grew: Vec<String> = after
        .iter()
        .zip(before)
        .map(|((n, a), (_, b))| format!("{n} +{} KiB", a.saturating_sub(*b)))
        .collect();
    println!(
        "tower memory (launcher + daemons' RSS): {b} KiB before the agents, {a} KiB with {hosts} connected: {:.1} KiB per agent",
        (a.saturating_sub(b)) as f64 / hosts as f64
    );
    println!(
        "memory each process gained with the agents: {}",
        grew.join(", ")
    );
    let sim_rss: u64 = sims.iter().map(|(_, p)| rss_kib(*p)).sum();
    println!(
        "simulators' memory: {sim_rss} KiB ({:.1} KiB per agent, keys, sockets and plugs)",
        sim_rss as f64 / hosts as f64
    );
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let hosts = a.hosts;
    let mut tower = BenchTower::start()?;
    let mut api = bench_api(&tower)?;
    let per = plan(a, &tower)?;
    let pairs = register(&mut api, hosts)?;
    let keys = tower.dir.path().join("agents.keys");
    let tower_key = std::fs::read_to_string(tower.dir.path().join("data/keys/tower.public"))?;
    write_keys(&keys, &tower.majordomo, &tower_key, &pairs)?;
    drop(pairs);
    let pids = tower_pids(&tower);
    let before = rss_each(&pids);
    let t = Instant::now();
    let mut sims = Sims::start(&keys, hosts, per, a.beat_ms)?;
    let sim_pids: Vec<(String, u32)> = sims
        .pids()
        .into_iter()
        .enumerate()
        .map(|(i, p)| (format!("simulator {}", i + 1), p))
        .collect();
    let all: Vec<(String, u32)> = pids.iter().cloned().chain(sim_pids.clone()).collect();
    let phase = Sched::now(&all);
    let within = Duration::from_secs(60 + hosts as u64 / 200);
    let came = wait_online(&mut api, &tower, &sims, hosts, hosts as u64, within);
    phase.say("connecting", &all);
    came?;
    println!(
        "{hosts} agents connected (CURVE handshakes) and online in {:.2?}",
        t.elapsed()
    );
    memory(&before, &pids, &sim_pids, hosts);
    fan_out(&tower, &mut api, &all, hosts)?;
    host_metrics(&mut sims, &tower, hosts)?;
    if a.restart {
        restart(&mut tower, &mut api, &sims, hosts, a.back_within)?;
    }
    println!("tower events: {}", tower.heard.events_said());
    drop(sims);
    tower.stop()
}

/// Every process's time on a CPU and waiting for one since a phase began.
struct Sched {
    at: Instant,
    each: Vec<[u64; 2]>,
}

impl Sched {
    fn now(all: &[(String, u32)]) -> Self {
        Self {
            at: Instant::now(),
            each: all.iter().map(|(_, p)| sched_ms(*p)).collect(),
        }
    }

    /// One line: on a CPU (% of one core over the phase) and runnable
    /// but waiting for a CPU, per process.
    fn say(&self, phase: &str, all: &[(String, u32)]) {
        let secs = self.at.elapsed().as_secs_f64();
        let each: Vec<String> = all
            .iter()
            .zip(&self.each)
            .map(|((n, p), b)| {
                let a = sched_ms(*p);
                let (run, wait) = (
                    a[0].saturating_sub(b[0]) as f64 / 1e3,
                    a[1].saturating_sub(b[1]) as f64 / 1e3,
                );
                format!(
                    "{n} {run:.1} s ({:.0}%) waited {wait:.1} s",
                    run * 100.0 / secs
                )
            })
            .collect();
        println!(
            "CPU while {phase} ({secs:.0} s; on a CPU, % of one core, then time runnable but waiting for a CPU): {}",
            each.join(", ")
        );
    }
}

/// The benchmark's own client of the tower's API.
fn bench_api(tower: &BenchTower) -> anyhow::Result<ApiClient> {
    let caller = Caller::internal(vigie_wire::ids::TOWER_TENANT, "bench");
    let mut api = ApiClient::direct(&tower.ep("api"), &tower.ep("orders"), caller)?;
    api.set_timeout(Duration::from_secs(120));
    Ok(api)
}

/// A 3-step change to every agent, through the majordomo.
fn fan_out(
    tower: &BenchTower,
    api: &mut ApiClient,
    all: &[(String, u32)],
    hosts: usize,
) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let updates = ctx.socket(zmq::SUB)?;
    updates.set_rcvhwm(1_000_000)?;
    updates.set_subscribe(ALL_CHANGES_TOPIC)?;
    updates.connect(&tower.ep("orders"))?;
    let spec = vigie_changes::parse_change(
        "bench.yml",
        "title: bench\nsteps:\n  - run: a\n  - run: b\n  - run: c\n",
    )?;
    // Let the watcher's subscription reach the referee first.
    std::thread::sleep(Duration::from_millis(300));
    let cpu = |p: &[(String, u32)]| -> Vec<u64> { p.iter().map(|(_, p)| cpu_ticks(*p)).collect() };
    let cpu_before = cpu(all);
    let load_before = loadavg();
    let t = Instant::now();
    // A submission matches at most 5,000 hosts: one per first digit
    // (`sim-1*` ... `sim-9*` split sim-1..sim-N, at most 1,112 each up to
    // 10,000).
    let mut open: HashSet<String> = HashSet::new();
    for d in 1..=9 {
        let target = format!("sim-{d}*");
        if d > hosts {
            break;
        }
        let views = api.changes(ApiCall::Submit {
            spec: spec.clone(),
            target,
        })?;
        open.extend(views.into_iter().map(|v| v.id));
    }
    let n = open.len();
    let mut ok = 0;
    let deadline = Instant::now() + Duration::from_secs(120 + hosts as u64 / 100);
    while !open.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} changes still open",
            open.len()
        );
        if updates.poll(zmq::POLLIN, 100)? == 0 {
            continue;
        }
        while let Ok(parts) = updates.recv_multipart(zmq::DONTWAIT) {
            let Some(frame) = parts.get(1) else { continue };
            if let Ok(Published::Update(v)) = vigie_wire::decode::<Published>(frame) {
                if v.state.is_final() && open.remove(&v.id) && v.state == ChangeState::Succeeded {
                    ok += 1;
                }
            }
        }
    }
    let e = t.elapsed();
    let spent: Vec<String> = all
        .iter()
        .zip(cpu(all).into_iter().zip(cpu_before))
        .map(|((n, _), (after, before))| {
            let s = after.saturating_sub(before) as f64 / 100.0;
            format!("{n} {s:.2} s ({:.0}%)", s * 100.0 / e.as_secs_f64())
        })
        .collect();
    println!(
        "one 3-step change to {n} agents through the majordomo: {e:.2?} until all done, {:.0} hosts/s ({ok} succeeded)",
        n as f64 / e.as_secs_f64()
    );
    println!(
        "CPU of every process during the fan-out (% of one core): {}",
        spent.join(", ")
    );
    println!(
        "machine load (1 min) before and after the fan-out: {load_before} / {}",
        loadavg()
    );
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// The majordomo's CPU with the agents idle (heartbeats every 500 ms,
/// staggered), without samples and with one sample per agent every 10 s,
/// in alternating windows of the same run.
fn host_metrics(sims: &mut Sims, tower: &BenchTower, hosts: usize) -> anyhow::Result<()> {
    let window = Duration::from_secs(8);
    let every = Duration::from_secs(10);
    let majordomo = *tower.pids.get("majordomo").context("no majordomo")?;
    let referee = *tower.pids.get("referee").context("no referee")?;
    let mut ticks = [0u64; 2];
    let mut referee_ticks = [0u64; 2];
    for round in 0..4 {
        let with = round % 2 == 1;
        sims.tell(&format!(
            "samples {}",
            if with { every.as_millis() } else { 0 }
        ))?;
        let cpu0 = cpu_ticks(majordomo);
        let referee0 = cpu_ticks(referee);
        std::thread::sleep(window);
        ticks[usize::from(with)] += cpu_ticks(majordomo) - cpu0;
        referee_ticks[usize::from(with)] += cpu_ticks(referee) - referee0;
    }
    sims.tell("samples 0")?;
    let secs = 2.0 * window.as_secs_f64();
    println!(
        "majordomo CPU with {hosts} idle agents over {secs:.0} s: {:.2} s without host metrics, {:.2} s with one sample per agent every {} s: ratio {:.3}",
        ticks[0] as f64 / 100.0,
        ticks[1] as f64 / 100.0,
        every.as_secs(),
        ticks[1] as f64 / ticks[0].max(1) as f64
    );
    println!(
        "referee CPU in the same windows: {:.2} s without, {:.2} s with host metrics",
        referee_ticks[0] as f64 / 100.0,
        referee_ticks[1] as f64 / 100.0
    );
    Ok(())
}

/// The whole tower stopped and started again under the connected fleet:
/// how long until every agent is back (its first message through the new
/// majordomo, and the referee counting it online), and whether the front
/// door refused any of them.
fn restart(
    tower: &mut BenchTower,
    api: &mut ApiClient,
    sims: &Sims,
    hosts: usize,
    within: Duration,
) -> anyhow::Result<()> {
    let refused0 = tower.heard.refused.load(Ordering::Relaxed);
    let dropped0 = tower.heard.knocks_dropped.load(Ordering::Relaxed);
    let t = Instant::now();
    tower.connected_reset();
    tower.restart()?;
    let up = t.elapsed();
    anyhow::ensure!(
        up < within,
        "the tower took {up:.2?} to start again: the fleet cannot be back within {within:?}"
    );
    *api = bench_api(tower)?;
    let back = wait_online(
        api,
        tower,
        sims,
        hosts,
        hosts as u64,
        within.saturating_sub(up),
    )?;
    println!(
        "tower restarted under {hosts} agents: ready again in {up:.2?}, every agent back (first message through the new majordomo, online at the referee) {back:.2?} later, {:.2?} in all; handshakes refused: {}, knock reports dropped: {}",
        up + back,
        tower.heard.refused.load(Ordering::Relaxed) - refused0,
        tower.heard.knocks_dropped.load(Ordering::Relaxed) - dropped0
    );
    Ok(())
}
