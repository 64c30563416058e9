//! Real database servers for the deployer's tests: a PostgreSQL of its own
//! (Debian's package; `initdb` into a temp dir, run as the `postgres` user
//! on a free loopback port and a private socket dir) and a `redis-server`
//! of its own (temp dir, free loopback port). Both are children of the
//! test, started and waited for on their own readiness lines, and stopped
//! when dropped.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};

const READY: Duration = Duration::from_secs(60);

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits until one line of `child`'s stderr (or stdout) contains `ready`;
/// fails listing what it said.
fn wait_ready(child: &mut Child, stderr: bool, ready: &str, what: &str) -> anyhow::Result<()> {
    let pipe: Box<dyn std::io::Read + Send> = if stderr {
        Box::new(child.stderr.take().context("no stderr")?)
    } else {
        Box::new(child.stdout.take().context("no stdout")?)
    };
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    // One deadline for the whole wait: a chatty server cannot extend it.
    let deadline = std::time::Instant::now() + READY;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
            Ok(line) if line.contains(ready) => return Ok(()),
            Ok(line) => seen.push(line),
            Err(_) => bail!("{what} never got ready:\n{}", seen.join("\n")),
        }
    }
}

/// The directory of PostgreSQL's programs (the newest installed).
fn pg_bin() -> anyhow::Result<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("PostgreSQL is not installed (scripts/deps installs it)")?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("postgres").exists())
        .collect();
    found.sort();
    found
        .pop()
        .context("no PostgreSQL server under /usr/lib/postgresql")
}

/// Runs a PostgreSQL program as the `postgres` user (the server refuses
/// root), without a shell.
fn as_postgres(program: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=postgres",
        "--regid=postgres",
        "--clear-groups",
        "--",
    ])
    .arg(program);
    cmd
}

pub struct Postgres {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl Postgres {
    /// A fresh cluster (trust authentication on loopback and its socket),
    /// started and ready.
    pub fn start() -> anyhow::Result<Postgres> {
        let bin = pg_bin()?;
        let dir = tempfile::tempdir()?;
        let postgres = nix::unistd::User::from_name("postgres")?
            .context("no postgres user (the Debian package makes it)")?;
        nix::unistd::chown(dir.path(), Some(postgres.uid), Some(postgres.gid))?;
        let data = dir.path().join("data");
        let out = as_postgres(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
            .output()?;
        ensure_ok(&out, "initdb")?;
        let port = free_port()?;
        let mut child = as_postgres(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(dir.path())
            .args(["-c", "fsync=off", "-c", "log_min_messages=log"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot run postgres")?;
        let ready = wait_ready(
            &mut child,
            true,
            "database system is ready to accept connections",
            "postgres",
        );
        let pg = Postgres {
            child,
            _dir: dir,
            port,
        };
        ready.map(|()| pg)
    }

    /// The admin URL an environment file names.
    pub fn admin_url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// One value from a query in `database`, through psql.
    pub fn query(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let out = Command::new("psql")
            .arg(format!(
                "postgresql://postgres@127.0.0.1:{}/{database}",
                self.port
            ))
            .args(["-v", "ON_ERROR_STOP=1", "-qtAX", "-c", sql])
            .output()?;
        ensure_ok(&out, sql)?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: PostgreSQL's fast shutdown (clients cut, no waiting).
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let _ = self.child.wait();
    }
}

pub struct Redis {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

impl Redis {
    pub fn start() -> anyhow::Result<Redis> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run redis-server (scripts/deps installs it)")?;
        let ready = wait_ready(&mut child, false, "Ready to accept connections", "redis");
        let redis = Redis {
            child,
            _dir: dir,
            port,
        };
        ready.map(|()| redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Every key in the server.
    pub fn keys(&self) -> anyhow::Result<Vec<String>> {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string(), "--scan"])
            .output()?;
        ensure_ok(&out, "redis-cli --scan")?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ensure_ok(out: &Output, what: &str) -> anyhow::Result<()> {
    if !out.status.success() {
        bail!(
            "{what}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}
