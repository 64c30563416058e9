//! A real etcd for the tests (Debian's `etcd-server`, installed by
//! scripts/deps): a child of the test with its own data dir, on free
//! loopback ports, waited for on its own structured log (etcd's JSON
//! `serving client traffic` line), killed with SIGKILL — a crash — and
//! restarted on the same dir and ports.

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

/// One single-member etcd cluster.
#[derive(Debug)]
pub struct EtcdServer {
    child: Option<Child>,
    dir: PathBuf,
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
        let mut s = Self {
            child: None,
            dir: dir.to_path_buf(),
            client: free_port()?,
            peer: free_port()?,
            limits,
            starts: 0,
        };
        s.launch()?;
        Ok(s)
    }

    /// `http://127.0.0.1:PORT`, for the engine.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.client)
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

    fn launch(&mut self) -> Result<(), String> {
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let limits = self.limits;
        let mut child = Command::new("etcd")
            .arg("--name=t")
            .arg(format!("--data-dir={}", self.dir.display()))
            .arg(format!("--listen-client-urls={}", self.endpoint()))
            .arg(format!("--advertise-client-urls={}", self.endpoint()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .arg(format!("--max-txn-ops={}", limits.ops))
            .arg(format!("--max-request-bytes={}", limits.bytes))
            .args(["--heartbeat-interval=50", "--election-timeout=500"])
            .args(["--logger=zap", "--log-outputs=stderr"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("etcd (scripts/deps installs Debian's etcd-server): {e}"))?;
        let stderr = child.stderr.take().ok_or("etcd: no stderr")?;
        self.child = Some(child);
        self.starts += 1;
        wait_ready(stderr)
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
        self.launch()
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
