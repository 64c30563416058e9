//! `vigie bench agents`: a fleet of simulated agents, each with its own
//! Curve25519 key and its own CURVE connection to the majordomo, against a
//! real tower started by the launcher (separate processes, so their memory
//! and CPU can be read from /proc). Measures a 3-step change to every agent,
//! the tower's memory per connected agent, and the majordomo's CPU.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use vigie_escalator::bench::free_port;
use vigie_majordomo::keys::KeyPair;
use vigie_plug::{MemJournal, Plug};
use vigie_referee::ApiClient;
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::tower::{
    ApiAnswer, ApiCall, Caller, ChangeState, PlugEvent, Published, ALL_CHANGES_TOPIC,
};

/// Resident memory of a process, in KiB.
pub(super) fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// User + system CPU time of a process, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s
                .rsplit(')')
                .next()?
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let f: Vec<&str> = rest.split(' ').collect();
            // After the command name: state is field 0; utime 11, stime 12.
            Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0)
}

struct SimAgent {
    sock: zmq::Socket,
    plug: Plug,
}

fn send(sock: &zmq::Socket, ev: PlugEvent) {
    if let Ok(f) = vigie_wire::encode(&FrontIn::Plug(ev)) {
        let _ = sock.send(f, zmq::DONTWAIT);
    }
}

/// A tower started by the launcher in a temp dir for a benchmark: its
/// children's pids (to read their memory and CPU) and endpoints.
pub(super) struct BenchTower {
    pub dir: tempfile::TempDir,
    pub launcher: std::process::Child,
    pub pids: HashMap<String, u32>,
    pub majordomo: String,
}

impl BenchTower {
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("vigie-bench-agents-")
            .tempdir()?;
        let ep = |n: &str| format!("ipc://{}/{n}.sock", dir.path().display());
        let majordomo = format!("tcp://127.0.0.1:{}", free_port()?);
        let setup = format!(
            "name: bench\ndata_dir: data\nendpoints:\n  escalator: {}\n  api: {}\n  events: {}\n  orders: {}\n  lifecycle: {}\n  majordomo: {majordomo}\n  metrics: http://127.0.0.1:0\n",
            ep("escalator"),
            ep("api"),
            ep("events"),
            ep("orders"),
            ep("lifecycle")
        );
        let file = dir.path().join("tower.yml");
        std::fs::write(&file, setup)?;
        let mut launcher = Command::new(std::env::current_exe()?)
            .args(["--log-json", "start", "--setup"])
            .arg(&file)
            // Dies with the benchmark, however it ends (its output piped
            // into `head`, a Ctrl-C): no tower left behind.
            .env(
                vigie_launcher::PARENT_PID_ENV,
                std::process::id().to_string(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = launcher.stderr.take().context("stderr")?;
        let mut lines = BufReader::new(stderr).lines();
        let mut pids: HashMap<String, u32> = HashMap::new();
        for line in lines.by_ref() {
            let line = line?;
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if v["event"] == "child_started" {
                if let (Some(n), Some(p)) = (v["name"].as_str(), v["pid"].as_u64()) {
                    pids.insert(n.to_owned(), u32::try_from(p)?);
                }
            }
            if v["event"] == "tower_ready" {
                break;
            }
            anyhow::ensure!(
                v["event"] != "start_failed",
                "the tower did not start: {line}"
            );
        }
        // Keep reading the launcher's output so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Self {
            dir,
            launcher,
            pids,
            majordomo,
        })
    }

    pub fn ep(&self, n: &str) -> String {
        format!("ipc://{}/{n}.sock", self.dir.path().display())
    }

    pub fn stop(mut self) -> anyhow::Result<()> {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.launcher.id())?),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.launcher.wait();
        Ok(())
    }
}

pub fn run(hosts: usize) -> anyhow::Result<()> {
    let tower = BenchTower::start()?;
    let (dir, pids, majordomo) = (&tower.dir, &tower.pids, tower.majordomo.clone());
    let launcher = &tower.launcher;
    let ep = |n: &str| tower.ep(n);
    let tower_pids: Vec<u32> = pids.values().copied().chain([launcher.id()]).collect();
    let tower_rss = || tower_pids.iter().map(|p| rss_kib(*p)).sum::<u64>();
    let majordomo_pid = *pids.get("majordomo").context("no majordomo")?;
    let tower_key = vigie_majordomo::keys::from_z85(&std::fs::read_to_string(
        dir.path().join("data/keys/tower.public"),
    )?)
    .context("tower key")?;

    let caller = Caller::internal(vigie_referee::TOWER_TENANT, "bench");
    let mut api = ApiClient::direct(&ep("api"), &ep("orders"), caller)?;
    println!("# vigie bench agents --hosts {hosts}");
    println!("(tower: launcher, escalator, referee, majordomo as processes; agents: {hosts} CURVE connections, each its own key, noop driver, in this process)");
    let t = Instant::now();
    let mut pairs = Vec::with_capacity(hosts);
    for i in 1..=hosts {
        let pair = KeyPair::generate();
        api.call(ApiCall::KeyAdd {
            host: format!("sim-{i}"),
            public: pair.public_z85(),
        })?;
        pairs.push(pair);
    }
    println!("registered {hosts} agent keys in {:.2?}", t.elapsed());
    let before = tower_rss();
    let rss_each =
        || -> Vec<(String, u64)> { pids.iter().map(|(n, p)| (n.clone(), rss_kib(*p))).collect() };
    let each_before = rss_each();

    let ctx = zmq::Context::new();
    let stash = dir.path().join("stash");
    let mut agents = Vec::with_capacity(hosts);
    let t = Instant::now();
    for (i, pair) in pairs.iter().enumerate() {
        let sock = ctx.socket(zmq::DEALER)?;
        sock.set_curve_serverkey(&tower_key)?;
        sock.set_curve_publickey(&pair.public)?;
        sock.set_curve_secretkey(&pair.secret)?;
        sock.set_linger(0)?;
        sock.connect(&majordomo)?;
        let host = format!("sim-{}", i + 1);
        let mut plug = Plug::new(
            &host,
            Default::default(),
            Box::new(vigie_drivers::NoopDriver),
            Box::new(MemJournal::default()),
            &stash,
        )
        .without_stash_dirs();
        plug.recover(&mut |ev| send(&sock, ev))?;
        send(&sock, plug.heartbeat());
        agents.push(SimAgent { sock, plug });
    }
    // A benchmark may poll: until the referee counts every agent online.
    // One poll over every agent and, when given, the updates' SUB: true
    // when the SUB has something.
    let pump = |agents: &mut Vec<SimAgent>,
                updates: Option<&zmq::Socket>,
                wait_ms: i64|
     -> anyhow::Result<bool> {
        let mut items: Vec<zmq::PollItem> = agents
            .iter()
            .map(|a| a.sock.as_poll_item(zmq::POLLIN))
            .chain(updates.map(|u| u.as_poll_item(zmq::POLLIN)))
            .collect();
        zmq::poll(&mut items, wait_ms)?;
        let sub_ready = updates.is_some() && items.last().is_some_and(|i| i.is_readable());
        let ready: Vec<usize> = items
            .iter()
            .take(agents.len())
            .enumerate()
            .filter(|(_, i)| i.is_readable())
            .map(|(n, _)| n)
            .collect();
        drop(items);
        for n in ready {
            let a = &mut agents[n];
            while let Ok(frame) = a.sock.recv_bytes(zmq::DONTWAIT) {
                let sock = &a.sock;
                let mut out = |ev| send(sock, ev);
                match vigie_wire::decode::<FrontOut>(&frame) {
                    Ok(FrontOut::Published(Published::Order(o))) => a.plug.on_order(o, &mut out)?,
                    Ok(FrontOut::Published(Published::ReportAck { upto, .. })) => {
                        a.plug.on_ack(upto)?
                    }
                    // A new journal numbers its reports in the incarnation
                    // the referee hands out; until then it is not online.
                    Ok(FrontOut::Published(Published::Incarnation { host, incarnation })) => {
                        a.plug.on_incarnation(&host, incarnation)?;
                    }
                    _ => {}
                }
            }
        }
        Ok(sub_ready)
    };
    let mut last_beat = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut online = 0;
    loop {
        pump(&mut agents, None, 50)?;
        if last_beat.elapsed() > Duration::from_millis(500) {
            for a in &agents {
                send(&a.sock, a.plug.heartbeat());
            }
            last_beat = Instant::now();
            if let ApiAnswer::Hosts(h) = api.call(ApiCall::Hosts)? {
                online = h.iter().filter(|h| h.online).count();
                if online == hosts {
                    break;
                }
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the agents did not all come online ({online} of {hosts})"
        );
    }
    println!(
        "{hosts} agents connected (CURVE handshakes) and online in {:.2?}",
        t.elapsed()
    );
    let after = tower_rss();
    let grew: Vec<String> = rss_each()
        .into_iter()
        .zip(each_before)
        .map(|((n, a), (_, b))| format!("{n} +{} KiB", a.saturating_sub(b)))
        .collect();

    let updates = ctx.socket(zmq::SUB)?;
    updates.set_rcvhwm(1_000_000)?;
    updates.set_subscribe(ALL_CHANGES_TOPIC)?;
    updates.connect(&ep("orders"))?;
    let spec = vigie_changes::parse_change(
        "bench.yml",
        "title: bench\nsteps:\n  - run: a\n  - run: b\n  - run: c\n",
    )?;
    // Let the watcher's subscription reach the referee first.
    let warm = Instant::now();
    while warm.elapsed() < Duration::from_millis(300) {
        pump(&mut agents, None, 10)?;
    }
    let cpu0 = cpu_ticks(majordomo_pid);
    let me = std::process::id();
    let all_cpu = || -> Vec<(String, u64)> {
        pids.iter()
            .map(|(n, p)| (n.clone(), cpu_ticks(*p)))
            .chain([("simulated agents".to_owned(), cpu_ticks(me))])
            .collect()
    };
    let cpu_before = all_cpu();
    let t = Instant::now();
    let views = api.changes(ApiCall::Submit {
        spec,
        target: "sim-*".into(),
    })?;
    let mut open: std::collections::HashSet<String> = views.into_iter().map(|v| v.id).collect();
    let n = open.len();
    let mut ok = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while !open.is_empty() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} changes still open",
            open.len()
        );
        if !pump(&mut agents, Some(&updates), 10)? {
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
    let cpu = cpu_ticks(majordomo_pid) - cpu0;
    let spent: Vec<String> = all_cpu()
        .into_iter()
        .zip(cpu_before)
        .map(|((n, after), (_, before))| format!("{n} {:.2} s", (after - before) as f64 / 100.0))
        .collect();
    println!(
        "one 3-step change to {n} agents through the majordomo: {e:.2?} until all done, {:.0} hosts/s ({ok} succeeded)",
        n as f64 / e.as_secs_f64()
    );
    println!(
        "tower memory (launcher + daemons' RSS): {before} KiB before the agents, {after} KiB with {hosts} connected: {:.1} KiB per agent",
        (after.saturating_sub(before)) as f64 / hosts as f64
    );
    println!(
        "majordomo CPU during the fan-out: {:.2} s over {:.2?} ({:.0}% of one core)",
        cpu as f64 / 100.0,
        e,
        cpu as f64 / e.as_secs_f64()
    );
    println!(
        "CPU of every process during the fan-out: {}",
        spent.join(", ")
    );
    println!(
        "memory each process gained with the agents: {}",
        grew.join(", ")
    );

    // Host metrics: the majordomo's CPU with the agents idle (heartbeats
    // every 500 ms), without samples and with one sample per agent every
    // 10 s, in alternating windows of the same run. Both are staggered, as
    // real agents started at different times are: beats sent all at once
    // would let the majordomo drain 1,000 per wake-up, a cost no real
    // fleet has, and make any message sent apart look dear.
    let mut sample = vigie_plug::host_metrics::sample("sim-0", dir.path(), 10_000);
    for r in 1..=4 {
        sample.services.push(vigie_wire::observe::ServiceState {
            name: "auto-shop-prod-web".into(),
            instance: "12".into(),
            replica: r.to_string(),
            running: true,
        });
    }
    let frame_bytes = vigie_wire::encode(&FrontIn::Plug(PlugEvent::HostMetrics(sample.clone())))
        .map_or(0, |f| f.len());
    let window = Duration::from_secs(8);
    let every = Duration::from_secs(10);
    let mut ticks = [0u64; 2];
    let mut referee_ticks = [0u64; 2];
    let referee_pid = *pids.get("referee").context("no referee")?;
    let mut samples_sent = 0u64;
    for round in 0..4 {
        let with = round % 2 == 1;
        let start = Instant::now();
        let cpu0 = cpu_ticks(majordomo_pid);
        let referee0 = cpu_ticks(referee_pid);
        let mut next_beat = 0usize;
        let mut next_sample = 0usize;
        while start.elapsed() < window {
            pump(&mut agents, None, 5)?;
            // Real agents beat each at its own moment, not all at once:
            // agent i beats at i/hosts of every 500 ms.
            let due = (start.elapsed().as_secs_f64() / 0.5 * hosts as f64) as usize;
            while next_beat < due {
                let a = &agents[next_beat % hosts];
                send(&a.sock, a.plug.heartbeat());
                next_beat += 1;
            }
            if with {
                // Agent i samples at i/hosts of the interval.
                let due =
                    ((start.elapsed().as_secs_f64() / every.as_secs_f64()) * hosts as f64) as usize;
                while next_sample < due {
                    let a = &agents[next_sample % hosts];
                    let mut s = sample.clone();
                    s.host = a.plug.host().to_owned();
                    send(&a.sock, PlugEvent::HostMetrics(s));
                    next_sample += 1;
                    samples_sent += 1;
                }
            }
        }
        ticks[usize::from(with)] += cpu_ticks(majordomo_pid) - cpu0;
        referee_ticks[usize::from(with)] += cpu_ticks(referee_pid) - referee0;
    }
    let secs = 2.0 * window.as_secs_f64();
    println!(
        "majordomo CPU with {hosts} idle agents over {secs:.0} s: {:.2} s without host metrics, {:.2} s with one sample per agent every {} s ({samples_sent} samples of {frame_bytes} bytes): ratio {:.3}",
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
    tower.stop()
}
