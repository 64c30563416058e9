//! The Escalator benchmark (not a test): throughput over the network against
//! in-process rusty-leveldb, durable writes with and without group commit,
//! and Redis on loopback as a reference peer. Every figure of one report
//! comes from the same run, so ratios hold even on a noisy machine.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use anyhow::Context;
use vigie_escalator::engine::{Engine, LevelDbEngine, LevelDbOptions};
use vigie_escalator::{Client, LocalServer};
use vigie_wire::escalator::BatchOp;

/// Operations per second of one workload.
#[derive(Debug, Clone)]
pub struct Figure {
    pub name: String,
    pub ops: u64,
    pub secs: f64,
}

impl Figure {
    fn new(name: impl Into<String>, ops: u64, elapsed: Duration) -> Self {
        Self {
            name: name.into(),
            ops,
            secs: elapsed.as_secs_f64(),
        }
    }

    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.secs.max(1e-9)
    }
}

fn key(i: u64) -> Vec<u8> {
    format!("key{i:010}").into_bytes()
}

const VALUE: [u8; 100] = [b'v'; 100];

/// A free loopback TCP port (bound then released: fine for a benchmark).
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("127.0.0.1:0")?;
    Ok(l.local_addr().context("127.0.0.1:0")?.port())
}

/// An Escalator on a thread of this process with the benchmark's database.
pub fn bench_server(data: &Path, group_commit: bool) -> anyhow::Result<LocalServer> {
    let server = LocalServer::start(data, group_commit)?;
    Client::connect(&server.endpoint)?.create("bench")?;
    Ok(server)
}

pub fn inprocess(dir: &Path, n: u64) -> anyhow::Result<(Figure, Figure)> {
    let mut e = LevelDbEngine::open(dir, LevelDbOptions::default())?;
    let t = Instant::now();
    for i in 0..n {
        e.write(&[BatchOp::Put {
            key: key(i),
            value: VALUE.to_vec(),
        }])?;
    }
    let put = Figure::new("in-process rusty-leveldb put", n, t.elapsed());
    let t = Instant::now();
    for i in 0..n {
        e.get(&key(i))?;
    }
    let get = Figure::new("in-process rusty-leveldb get", n, t.elapsed());
    Ok((put, get))
}

/// One client, one request at a time.
pub fn lockstep(endpoint: &str, n: u64) -> anyhow::Result<(Figure, Figure)> {
    let db = Client::connect(endpoint)?
        .connect_db("bench")?
        .durable(false);
    let t = Instant::now();
    for i in 0..n {
        db.put(&key(i), &VALUE)?;
    }
    let put = Figure::new("escalator put, 1 client lock-step", n, t.elapsed());
    let t = Instant::now();
    for i in 0..n {
        db.get(&key(i))?;
    }
    let get = Figure::new("escalator get, 1 client lock-step", n, t.elapsed());
    Ok((put, get))
}

/// Runs `work(thread index)` on `threads` threads started together; returns
/// the wall time of the slowest.
fn parallel<F>(threads: usize, work: F) -> anyhow::Result<Duration>
where
    F: Fn(usize, &Barrier) -> anyhow::Result<()> + Send + Sync + 'static,
{
    let barrier = Arc::new(Barrier::new(threads + 1));
    let work = Arc::new(work);
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let (b, w) = (barrier.clone(), work.clone());
            std::thread::spawn(move || w(i, &b))
        })
        .collect();
    barrier.wait();
    let t = Instant::now();
    for h in handles {
        h.join()
            .map_err(|_| anyhow::anyhow!("benchmark thread panicked"))??;
    }
    Ok(t.elapsed())
}

/// `clients` clients, each keeping `window` requests in flight.
pub fn pipelined(
    endpoint: &str,
    clients: usize,
    window: usize,
    per_client: u64,
) -> anyhow::Result<(Figure, Figure)> {
    let mut out = Vec::new();
    for get in [false, true] {
        let ep = endpoint.to_owned();
        let elapsed = parallel(clients, move |c, barrier| {
            let db = Client::connect(&ep)?.connect_db("bench")?.durable(false);
            let client = db.client().clone();
            let mut inflight = std::collections::VecDeque::with_capacity(window);
            barrier.wait();
            for i in 0..per_client {
                let k = key(c as u64 * per_client + i);
                let t = if get {
                    db.get_async(&k)?
                } else {
                    db.put_async(&k, &VALUE)?
                };
                inflight.push_back(t);
                if inflight.len() >= window {
                    if let Some(t) = inflight.pop_front() {
                        client.wait(t)?;
                    }
                }
            }
            for t in inflight {
                client.wait(t)?;
            }
            Ok(())
        })?;
        let what = if get { "get" } else { "put" };
        out.push(Figure::new(
            format!("escalator {what}, {clients} clients pipelined x{window}"),
            clients as u64 * per_client,
            elapsed,
        ));
    }
    let get = out.pop();
    let put = out.pop();
    put.zip(get).ok_or_else(|| anyhow::anyhow!("no figures"))
}

/// `writers` concurrent writers of durable puts, each on its own connection
/// with one write in flight at a time, driven by `threads` threads (64 OS
/// threads on 2 cores would measure the scheduler, not the server).
pub fn durable(
    endpoint: &str,
    writers: usize,
    threads: usize,
    per_writer: u64,
    label: &str,
) -> anyhow::Result<Figure> {
    let ep = endpoint.to_owned();
    let threads = threads.clamp(1, writers);
    let elapsed = parallel(threads, move |t, barrier| {
        let mine: Vec<usize> = (0..writers).filter(|w| w % threads == t).collect();
        let dbs = mine
            .iter()
            .map(|_| Client::connect(&ep)?.connect_db("bench"))
            .collect::<Result<Vec<_>, _>>()?;
        barrier.wait();
        for i in 0..per_writer {
            let tickets = dbs
                .iter()
                .zip(&mine)
                .map(|(db, w)| db.put_async(&key(*w as u64 * per_writer + i), &VALUE))
                .collect::<Result<Vec<_>, _>>()?;
            for (db, t) in dbs.iter().zip(tickets) {
                db.client().wait(t)?;
            }
        }
        Ok(())
    })?;
    Ok(Figure::new(
        format!("durable put, {writers} writers, {label}"),
        writers as u64 * per_writer,
        elapsed,
    ))
}

/// The floor libzmq sets: a bare DEALER/ROUTER echo, lock-step, on loopback.
pub fn zmq_echo_floor(n: u64) -> anyhow::Result<Figure> {
    let endpoint = format!("tcp://127.0.0.1:{}", free_port()?);
    let ctx = zmq::Context::new();
    let server = ctx.socket(zmq::ROUTER)?;
    server.bind(&endpoint)?;
    let echo = std::thread::spawn(move || -> Result<(), zmq::Error> {
        for _ in 0..=n {
            let m = server.recv_multipart(0)?;
            server.send_multipart(m, 0)?;
        }
        Ok(())
    });
    let client = ctx.socket(zmq::DEALER)?;
    client.connect(&endpoint)?;
    client.send(&VALUE[..], 0)?;
    client.recv_bytes(0)?;
    let t = Instant::now();
    for _ in 0..n {
        client.send(&VALUE[..], 0)?;
        client.recv_bytes(0)?;
    }
    let f = Figure::new("bare libzmq DEALER/ROUTER echo, lock-step", n, t.elapsed());
    echo.join()
        .map_err(|_| anyhow::anyhow!("echo thread panicked"))??;
    Ok(f)
}

/// A redis-server on loopback, killed on drop.
pub struct Redis {
    child: Child,
    pub url: String,
    _dir: PathBuf,
}

impl Redis {
    pub fn start(dir: &Path, fsync_always: bool) -> anyhow::Result<Self> {
        let bin = which("redis-server").ok_or_else(|| {
            anyhow::anyhow!("redis-server not found (apt-get install redis-server)")
        })?;
        std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
        let port = free_port()?.to_string();
        let mut cmd = Command::new(bin);
        cmd.args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--dir", &dir.display().to_string()]);
        if fsync_always {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("redis-server")?;
        let url = format!("redis://127.0.0.1:{port}/");
        let r = Self {
            child,
            url,
            _dir: dir.to_path_buf(),
        };
        // Wait until it accepts connections: PING with a bounded retry.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = r.connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return Ok(r);
                }
            }
            if Instant::now() > deadline {
                return Err(anyhow::anyhow!("redis-server did not start"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn connection(&self) -> anyhow::Result<redis::Connection> {
        redis::Client::open(self.url.as_str())
            .and_then(|c| c.get_connection())
            .map_err(anyhow::Error::from)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(bin))
        .find(|p| p.is_file())
}

fn rerr(e: redis::RedisError) -> anyhow::Error {
    anyhow::Error::new(e).context("redis")
}

pub fn redis_lockstep(r: &Redis, n: u64) -> anyhow::Result<(Figure, Figure)> {
    let mut c = r.connection()?;
    let t = Instant::now();
    for i in 0..n {
        redis::cmd("SET")
            .arg(key(i))
            .arg(&VALUE[..])
            .query::<()>(&mut c)
            .map_err(rerr)?;
    }
    let put = Figure::new("redis SET, 1 client lock-step", n, t.elapsed());
    let t = Instant::now();
    for i in 0..n {
        redis::cmd("GET")
            .arg(key(i))
            .query::<Option<Vec<u8>>>(&mut c)
            .map_err(rerr)?;
    }
    let get = Figure::new("redis GET, 1 client lock-step", n, t.elapsed());
    Ok((put, get))
}

pub fn redis_pipelined(
    r: &Redis,
    clients: usize,
    window: usize,
    per_client: u64,
) -> anyhow::Result<(Figure, Figure)> {
    let mut out = Vec::new();
    for get in [false, true] {
        let url = r.url.clone();
        let elapsed = parallel(clients, move |ci, barrier| {
            let mut c = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .map_err(rerr)?;
            barrier.wait();
            let mut i = 0;
            while i < per_client {
                let mut p = redis::pipe();
                for _ in 0..window.min((per_client - i) as usize) {
                    let k = key(ci as u64 * per_client + i);
                    if get {
                        p.cmd("GET").arg(k);
                    } else {
                        p.cmd("SET").arg(k).arg(&VALUE[..]).ignore();
                    }
                    i += 1;
                }
                p.query::<Vec<Option<Vec<u8>>>>(&mut c).map_err(rerr)?;
            }
            Ok(())
        })?;
        let what = if get { "GET" } else { "SET" };
        out.push(Figure::new(
            format!("redis {what}, {clients} clients pipelined x{window}"),
            clients as u64 * per_client,
            elapsed,
        ));
    }
    let get = out.pop();
    let put = out.pop();
    put.zip(get).ok_or_else(|| anyhow::anyhow!("no figures"))
}

/// Redis with `appendfsync always`: `writers` lock-step SET clients.
pub fn redis_durable(r: &Redis, writers: usize, per_writer: u64) -> anyhow::Result<Figure> {
    let url = r.url.clone();
    let elapsed = parallel(writers, move |w, barrier| {
        let mut c = redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .map_err(rerr)?;
        barrier.wait();
        for i in 0..per_writer {
            redis::cmd("SET")
                .arg(key(w as u64 * per_writer + i))
                .arg(&VALUE[..])
                .query::<()>(&mut c)
                .map_err(rerr)?;
        }
        Ok(())
    })?;
    Ok(Figure::new(
        format!("redis SET appendfsync=always, {writers} writers"),
        writers as u64 * per_writer,
        elapsed,
    ))
}
