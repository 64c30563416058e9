//! A real etcd for the tests (Debian's `etcd-server`, installed by
//! scripts/deps): a child of the test with its own data dir, on free
//! loopback ports — or a member of a cluster on a machine of its own (a
//! network namespace, [`EtcdServer::cluster`]) — waited for on its own
//! structured log (etcd's JSON `serving client traffic` line), killed with
//! SIGKILL — a crash — and restarted on the same dir and ports.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigie_escalator::engine::{EtcdOptions, TxnLimits};

const READY: Duration = Duration::from_secs(60);
/// What etcd logs once it serves clients (after joining its cluster).
const READY_MSG: &str = "serving client traffic insecurely; this is strongly discouraged!";

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("free port: {e}"))
}

/// A member of a cluster on another machine.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    /// Its network namespace.
    pub netns: String,
    /// Its address there (ports 2379 and 2380).
    pub ip: String,
}

/// One etcd member: of a single-member cluster on loopback by default.
#[derive(Debug)]
pub struct EtcdServer {
    child: Option<Child>,
    dir: PathBuf,
    name: String,
    ip: String,
    netns: Option<String>,
    /// `--initial-cluster`.
    cluster: String,
    client: u16,
    peer: u16,
    limits: TxnLimits,
    /// Starts so far (1 + restarts).
    pub starts: u32,
}

impl EtcdServer {
    /// Starts a fresh member with its data in `dir`.
    pub fn start(dir: &Path) -> Result<Self, String> {
        Self::start_with(dir, TxnLimits::default())
    }

    /// With transactions of up to `limits` (an HA tower's referee writes
    /// bigger batches than etcd's defaults allow).
    pub fn start_with(dir: &Path, limits: TxnLimits) -> Result<Self, String> {
        let peer = free_port()?;
        let mut s = Self {
            child: None,
            dir: dir.to_path_buf(),
            name: "t".into(),
            ip: "127.0.0.1".into(),
            netns: None,
            cluster: format!("t=http://127.0.0.1:{peer}"),
            client: free_port()?,
            peer,
            limits,
            starts: 0,
        };
        let stderr = s.spawn()?;
        wait_ready(stderr)?;
        Ok(s)
    }

    /// A cluster of `members`, each in its namespace, data under `dir`;
    /// returns once every member serves clients.
    pub fn cluster(dir: &Path, members: &[Member], limits: TxnLimits) -> Result<Vec<Self>, String> {
        let cluster: Vec<String> = members
            .iter()
            .map(|m| format!("{}=http://{}:2380", m.name, m.ip))
            .collect();
        let mut out = Vec::new();
        let mut pipes = Vec::new();
        // All spawned before any is waited for: none is ready before a quorum.
        for m in members {
            let mut s = Self {
                child: None,
                dir: dir.join(&m.name),
                name: m.name.clone(),
                ip: m.ip.clone(),
                netns: Some(m.netns.clone()),
                cluster: cluster.join(","),
                client: 2379,
                peer: 2380,
                limits,
                starts: 0,
            };
            pipes.push(s.spawn()?);
            out.push(s);
        }
        for p in pipes {
            wait_ready(p)?;
        }
        Ok(out)
    }

    /// `http://IP:PORT`, for the engine.
    pub fn endpoint(&self) -> String {
        format!("http://{}:{}", self.ip, self.client)
    }

    /// Engine options for a database under `prefix` on this server.
    pub fn options(&self, prefix: &[u8]) -> EtcdOptions {
        EtcdOptions {
            endpoints: vec![self.endpoint()],
            prefix: prefix.to_vec(),
            timeout: Duration::from_secs(10),
            limits: self.limits,
        }
    }

    fn command(&self) -> Command {
        match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "etcd"]);
                c
            }
            None => Command::new("etcd"),
        }
    }

    /// Starts the process; its stderr is for [`wait_ready`].
    fn spawn(&mut self) -> Result<std::process::ChildStderr, String> {
        let peer = format!("http://{}:{}", self.ip, self.peer);
        let limits = self.limits;
        let mut child = self
            .command()
            .arg(format!("--name={}", self.name))
            .arg(format!("--data-dir={}", self.dir.display()))
            .arg(format!("--listen-client-urls={}", self.endpoint()))
            .arg(format!("--advertise-client-urls={}", self.endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster={}", self.cluster))
            .arg(format!("--max-txn-ops={}", limits.ops))
            .arg(format!("--max-request-bytes={}", limits.bytes))
            // A lone member elects itself at every restart (the crash
            // points restart it often): quickly. A cluster keeps etcd's
            // defaults, so that a loaded machine does not set off elections.
            .args(if self.netns.is_none() {
                ["--heartbeat-interval=50", "--election-timeout=500"]
            } else {
                ["--heartbeat-interval=100", "--election-timeout=1000"]
            })
            .args(["--logger=zap", "--log-outputs=stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("etcd (scripts/deps installs Debian's etcd-server): {e}"))?;
        let stderr = child.stderr.take().ok_or("etcd: no stderr")?;
        self.child = Some(child);
        self.starts += 1;
        Ok(stderr)
    }

    /// SIGKILL, as a crash of its machine's process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same data dir and ports.
    pub fn restart(&mut self) -> Result<(), String> {
        self.kill();
        let stderr = self.spawn()?;
        wait_ready(stderr)
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Waits for etcd's ready event in its JSON log, draining the pipe for
/// good after; fails listing what it said.
fn wait_ready(stderr: std::process::ChildStderr) -> Result<(), String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + READY;
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| format!("etcd never got ready:\n{}", seen.join("\n")))?;
        let msg = serde_json::from_str::<Value>(&line)
            .ok()
            .and_then(|v| v.get("msg").and_then(Value::as_str).map(str::to_owned));
        if msg.as_deref() == Some(READY_MSG) {
            return Ok(());
        }
        seen.push(line);
    }
}
