//! The simulated agents of `vigie bench agents`, in a process of their own
//! (`vigie bench agents --sim FILE --sim-first N --sim-count N`, started by
//! the benchmark): each agent its own key, its own CURVE connection and a
//! plug with the noop driver. A process holds as many agents as its
//! descriptor limit allows (two descriptors each: the TCP connection and
//! the socket's mailbox); the benchmark starts as many processes as it
//! needs. It runs until its stdin closes; a line `samples MS` on stdin
//! makes every agent send a host metrics sample every MS ms (0: none).

use std::io::BufRead;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use vigie_majordomo::keys::from_z85;
use vigie_plug::{MemJournal, Plug};
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::tower::{PlugEvent, Published};

/// Descriptors one simulated agent holds: its TCP connection and its
/// socket's mailbox (an eventfd).
pub(super) const FDS_PER_AGENT: u64 = 2;

/// libzmq refuses a context's 1,024th socket (`ZMQ_MAX_SOCKETS`, 1,023 by
/// default, with `Too many open files`) and the zmq crate has no setter
/// for it: a new context every this many agents.
const SOCKETS_PER_CONTEXT: usize = 1_000;

struct SimAgent {
    sock: zmq::Socket,
    plug: Plug,
    /// Has received a frame from the tower (a ping, an incarnation...).
    heard: bool,
    /// Has taken the incarnation the referee handed out.
    incarnated: bool,
}

fn send(sock: &zmq::Socket, ev: PlugEvent) {
    if let Ok(f) = vigie_wire::encode(&FrontIn::Plug(ev)) {
        let _ = sock.send(f, zmq::DONTWAIT);
    }
}

/// The key file the benchmark writes: the majordomo's endpoint, the
/// tower's public key, then one agent a line: host, public, secret (Z85).
pub(super) fn write_keys(
    path: &Path,
    majordomo: &str,
    tower_key: &str,
    agents: &[(String, vigie_majordomo::keys::KeyPair)],
) -> anyhow::Result<()> {
    use std::fmt::Write;
    let mut s = format!("{majordomo}\n{}\n", tower_key.trim());
    for (host, k) in agents {
        let _ = writeln!(
            s,
            "{host} {} {}",
            k.public_z85(),
            vigie_majordomo::keys::z85(&k.secret)
        );
    }
    std::fs::write(path, s)?;
    Ok(())
}

fn connect(
    ctx: &zmq::Context,
    draw: f64,
    endpoint: &str,
    tower_key: &[u8; 32],
    line: &str,
    stash: &Path,
) -> anyhow::Result<SimAgent> {
    let mut f = line.split(' ');
    let (Some(host), Some(public), Some(secret)) = (f.next(), f.next(), f.next()) else {
        anyhow::bail!("bad key line");
    };
    let public = from_z85(public).context("public key")?;
    let secret = from_z85(secret).context("secret key")?;
    let sock = ctx.socket(zmq::DEALER)?;
    sock.set_curve_serverkey(tower_key)?;
    sock.set_curve_publickey(&public)?;
    sock.set_curve_secretkey(&secret)?;
    sock.set_linger(0)?;
    // As the real agent: jittered, doubling reconnection waits.
    let first = vigie_majordomo::backoff::reconnect_first(draw);
    sock.set_reconnect_ivl(first.as_millis() as i32)?;
    sock.set_reconnect_ivl_max(vigie_majordomo::backoff::RECONNECT_MAX.as_millis() as i32)?;
    sock.set_heartbeat_ivl(1_000)?;
    sock.set_heartbeat_timeout(5_000)?;
    sock.connect(endpoint)?;
    let mut plug = Plug::new(
        host,
        Default::default(),
        Box::new(vigie_drivers::NoopDriver),
        Box::new(MemJournal::default()),
        stash,
    )
    .without_stash_dirs();
    plug.recover(&mut |ev| send(&sock, ev))?;
    send(&sock, plug.heartbeat());
    Ok(SimAgent {
        sock,
        plug,
        heard: false,
        incarnated: false,
    })
}

/// One `poll(2)` over every agent's `ZMQ_FD`, then only the agents whose
/// descriptor woke drain their sockets. `zmq::poll` over the sockets
/// themselves asks each socket's mailbox for its events before and after
/// waiting — two system calls an agent a pass, the simulator's top cost
/// at 3,000 agents (BENCHMARKS.md).
fn pump(agents: &mut [SimAgent], fds: &[std::os::fd::RawFd], wait_ms: i64) -> anyhow::Result<()> {
    let mut items: Vec<zmq::PollItem> = fds
        .iter()
        .map(|fd| zmq::PollItem::from_fd(*fd, zmq::POLLIN))
        .collect();
    zmq::poll(&mut items, wait_ms)?;
    let ready: Vec<usize> = items
        .iter()
        .enumerate()
        .filter(|(_, i)| i.is_readable())
        .map(|(n, _)| n)
        .collect();
    drop(items);
    for n in ready {
        if let Some(a) = agents.get_mut(n) {
            drain(a)?;
        }
    }
    Ok(())
}

/// Everything waiting on one agent's socket, into its plug. `ZMQ_FD` is
/// edge-triggered: it says "look", and only `ZMQ_EVENTS` says what is
/// there; a send may take the edge, so every send is followed by this too.
fn drain(a: &mut SimAgent) -> anyhow::Result<()> {
    while a.sock.get_events()?.contains(zmq::POLLIN) {
        let Ok(frame) = a.sock.recv_bytes(zmq::DONTWAIT) else {
            break;
        };
        a.heard = true;
        let sock = &a.sock;
        let mut out = |ev| send(sock, ev);
        match vigie_wire::decode::<FrontOut>(&frame) {
            Ok(FrontOut::Published(Published::Order(o))) => a.plug.on_order(o, &mut out)?,
            Ok(FrontOut::Published(Published::ReportAck { upto, .. })) => a.plug.on_ack(upto)?,
            // A new journal numbers its reports in the incarnation
            // the referee hands out; until then it is not online.
            Ok(FrontOut::Published(Published::Incarnation { host, incarnation })) => {
                a.incarnated |= a.plug.on_incarnation(&host, incarnation)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// Reads the benchmark's commands on stdin; the end of stdin (the
/// benchmark ended, however) stops the simulator.
fn listen(samples_ms: Arc<AtomicU64>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if let Some(ms) = line.strip_prefix("samples ") {
                samples_ms.store(ms.trim().parse().unwrap_or(0), Ordering::Relaxed);
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
}

pub fn simulate(file: &Path, first: usize, count: usize, beat_ms: u64) -> anyhow::Result<()> {
    let limit = vigie_launcher::fdlimit::raise();
    let text = std::fs::read_to_string(file)?;
    let mut lines = text.lines();
    let endpoint = lines.next().context("no endpoint")?.to_owned();
    let tower_key = from_z85(lines.next().context("no tower key")?).context("tower key")?;
    let stash = file.with_extension(format!("stash-{first}"));
    let mut ctxs = Vec::new();
    let mut agents = Vec::with_capacity(count);
    for (i, line) in lines.skip(first).take(count).enumerate() {
        if i % SOCKETS_PER_CONTEXT == 0 {
            ctxs.push(zmq::Context::new());
        }
        let ctx = ctxs.last().context("context")?;
        // Spread evenly over [0, 1) without a random source: the golden
        // ratio's multiples.
        let draw = ((first + i) as f64 * 0.618_033_988_75).fract();
        agents.push(connect(ctx, draw, &endpoint, &tower_key, line, &stash)?);
    }
    println!(
        "{}",
        serde_json::json!({"event": "fd_limit", "daemon": "simulator", "soft": limit.soft,
            "hard": limit.hard, "was": limit.was, "per_agent": FDS_PER_AGENT,
            "agents_max": limit.agents_max(FDS_PER_AGENT), "agents": agents.len(),
            "contexts": ctxs.len()})
    );
    let samples_ms = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    listen(samples_ms.clone(), stop.clone());
    let beat = Duration::from_millis(beat_ms.max(1));
    run_agents(&mut agents, beat, &samples_ms, &stop, file)
}

/// How often a simulator says how far its agents got.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// One line on stdout for the benchmark: how many of this process's
/// agents have heard from the tower and taken an incarnation — where a
/// fleet that does not come online stalls (the front door, or the
/// referee's per-host path) shows here.
fn progress(agents: &[SimAgent]) {
    let heard = agents.iter().filter(|a| a.heard).count();
    let incarnated = agents.iter().filter(|a| a.incarnated).count();
    println!(
        "{}",
        serde_json::json!({"event": "sim_progress", "agents": agents.len(),
            "heard": heard, "incarnated": incarnated})
    );
}

/// Heartbeats and samples staggered as real agents started at different
/// times are: agent i beats at i/n of every beat interval. Beats sent all
/// at once would let the majordomo drain thousands per wake-up, a cost no
/// real fleet has.
fn run_agents(
    agents: &mut [SimAgent],
    beat: Duration,
    samples_ms: &AtomicU64,
    stop: &AtomicBool,
    dir: &Path,
) -> anyhow::Result<()> {
    let n = agents.len().max(1);
    let mut sample = vigie_plug::host_metrics::sample("sim-0", dir, 10_000);
    for r in 1..=4 {
        sample.services.push(vigie_wire::observe::ServiceState {
            name: "auto-shop-prod-web".into(),
            instance: "12".into(),
            replica: r.to_string(),
            running: true,
        });
    }
    let fds = agents
        .iter()
        .map(|a| a.sock.get_fd())
        .collect::<Result<Vec<_>, _>>()?;
    let start = Instant::now();
    let mut said = start;
    let mut next_beat = 0usize;
    let mut sampling: Option<(Instant, u64, usize)> = None;
    while !stop.load(Ordering::Relaxed) {
        pump(agents, &fds, 5)?;
        if said.elapsed() >= PROGRESS_EVERY {
            said = Instant::now();
            progress(agents);
        }
        let due = (start.elapsed().as_secs_f64() / beat.as_secs_f64() * n as f64) as usize;
        while next_beat < due {
            let a = &mut agents[next_beat % n];
            send(&a.sock, a.plug.heartbeat());
            drain(a)?;
            next_beat += 1;
        }
        let every = samples_ms.load(Ordering::Relaxed);
        sampling = match sampling {
            _ if every == 0 => None,
            Some((t, e, next)) if e == every => Some((t, e, next)),
            _ => Some((Instant::now(), every, 0)),
        };
        if let Some((t, e, next)) = sampling.as_mut() {
            let due = (t.elapsed().as_millis() as f64 / *e as f64 * n as f64) as usize;
            while *next < due {
                let a = &mut agents[*next % n];
                let mut s = sample.clone();
                s.host = a.plug.host().to_owned();
                send(&a.sock, PlugEvent::HostMetrics(s));
                drain(a)?;
                *next += 1;
            }
        }
    }
    Ok(())
}
