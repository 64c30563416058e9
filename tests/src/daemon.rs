//! `Daemon`: the real `vigie` binary as a child, its structured events
//! collected; `Escalator` on its own; the `Witness` pipe that proves no
//! descendant is left.

use std::io::{BufRead, BufReader};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::events::EventLog;

/// The `vigie` binary built beside the running test (`target/<profile>/`).
pub fn vigie_bin() -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_vigie") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test> -> target/<profile>/vigie
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("vigie");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (cargo build --workspace --bins)",
        bin.display()
    );
    bin
}

/// A `vigie` process whose JSON events are collected as they come. A
/// thread owns the child and reports its exit status, so waiting for an
/// exit is a wait on that report, not a polling loop.
pub struct Daemon {
    pid: Pid,
    exited: Mutex<mpsc::Receiver<ExitStatus>>,
    status: Option<ExitStatus>,
    pub events: EventLog,
    stderr_tail: Arc<Mutex<Vec<String>>>,
    /// Reads stderr until the process closes it.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// The read end of a pipe whose write end the process and every process it
/// starts inherit: it reads end-of-file exactly when all of them are gone.
/// Use it in a test binary of its own (a process spawned by another test
/// running at the same time would inherit the write end too).
pub struct Witness {
    read: std::os::fd::OwnedFd,
}

impl Witness {
    /// Waits until no process holds the write end any more.
    pub fn wait_all_gone(&self, timeout: Duration) -> anyhow::Result<()> {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        use std::os::fd::AsFd;
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            anyhow::ensure!(
                !left.is_zero(),
                "some process still holds the witness pipe after {timeout:?}"
            );
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let mut fds = [PollFd::new(self.read.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(ms)) {
                Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
                Ok(_) => {
                    let mut buf = [0u8; 16];
                    if nix::unistd::read(self.read.as_raw_fd(), &mut buf)? == 0 {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// Whether `pid` is a running process (a zombie, or a dead one, is not).
pub fn is_running(pid: Pid) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.as_raw())) {
        // The state follows the parenthesised command name.
        Ok(stat) => !matches!(
            stat.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next()),
            Some("Z" | "X" | "x")
        ),
        Err(_) => false,
    }
}

/// Waits until none of `pids` is running. A process closes its files a
/// moment before the kernel marks it dead, so this follows a [`Witness`]:
/// the kernel offers no event for a process that is not our child, hence a
/// bounded spin on the process table (never a sleep).
pub fn wait_not_running(pids: &[Pid], timeout: Duration) -> anyhow::Result<()> {
    let deadline = std::time::Instant::now() + timeout;
    while let Some(p) = pids.iter().find(|p| is_running(**p)) {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "process {p} still runs after {timeout:?}"
        );
        std::thread::yield_now();
    }
    Ok(())
}

impl Daemon {
    /// Starts `vigie --log-json ARGS...` holding a [`Witness`] pipe.
    pub fn spawn_witnessed<S: AsRef<std::ffi::OsStr>>(
        env: &[(&str, &Path)],
        args: &[S],
    ) -> anyhow::Result<(Self, Witness)> {
        use nix::fcntl::{fcntl, FcntlArg, FdFlag, OFlag};
        let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
        // Only the write end is inherited; ours closes when `write` drops.
        fcntl(write.as_raw_fd(), FcntlArg::F_SETFD(FdFlag::empty()))?;
        let d = Self::spawn_env(None, env, args)?;
        drop(write);
        Ok((d, Witness { read }))
    }

    /// Starts `vigie --log-json ARGS...`.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> anyhow::Result<Self> {
        Self::spawn_in(None, args)
    }

    /// Starts `vigie --log-json ARGS...` inside a network namespace, as a
    /// machine of its own (`ip netns exec NS`, which execs: the pid is
    /// vigie's).
    pub fn spawn_in<S: AsRef<std::ffi::OsStr>>(
        netns: Option<&str>,
        args: &[S],
    ) -> anyhow::Result<Self> {
        Self::spawn_env(netns, &[], args)
    }

    /// Like `spawn_in`, with these variables added to the environment.
    pub fn spawn_env<S: AsRef<std::ffi::OsStr>>(
        netns: Option<&str>,
        env: &[(&str, &Path)],
        args: &[S],
    ) -> anyhow::Result<Self> {
        let mut command = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(vigie_bin());
                c
            }
            None => Command::new(vigie_bin()),
        };
        let mut child = command
            .envs(env.iter().copied())
            .arg("--log-json")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning vigie")?;
        let pid = Pid::from_raw(i32::try_from(child.id())?);
        let events = EventLog::default();
        let stderr_tail = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().context("stderr")?;
        let (log, tail) = (events.clone(), stderr_tail.clone());
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.push_line(&line);
                tail.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
            log.close();
        });
        let (tx, exited) = mpsc::channel();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send(status);
            }
        });
        Ok(Self {
            pid,
            exited: Mutex::new(exited),
            status: None,
            events,
            stderr_tail,
            reader: Some(reader),
        })
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    pub fn signal(&self, sig: Signal) -> anyhow::Result<()> {
        kill(self.pid, sig).context("kill")
    }

    /// Everything the process wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr_tail
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("\n")
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let got = self
            .exited
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .recv_timeout(timeout);
        match got {
            Ok(s) => {
                self.status = Some(s);
                // Everything it wrote is read once its stderr closes (at
                // exit, unless a child of it still holds it).
                if let Some(r) = self.reader.take() {
                    let _ = r.join();
                }
                Ok(s)
            }
            Err(_) => anyhow::bail!(
                "process {} did not exit within {timeout:?}; stderr:\n{}",
                self.pid,
                self.stderr()
            ),
        }
    }

    /// SIGKILL and reap.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        self.signal(Signal::SIGKILL)?;
        self.wait_exit(Duration::from_secs(10)).map(|_| ())
    }

    /// SIGTERM, then wait for the exit.
    pub fn terminate(&mut self) -> anyhow::Result<ExitStatus> {
        self.signal(Signal::SIGTERM)?;
        self.wait_exit(Duration::from_secs(20))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
            if let Ok(rx) = self.exited.lock() {
                let _ = rx.recv_timeout(Duration::from_secs(10));
            }
        }
    }
}

/// A real `vigie escalator` process on an ipc endpoint inside its dir.
pub struct Escalator {
    pub daemon: Daemon,
    pub endpoint: String,
    pub data: PathBuf,
    extra: Vec<String>,
}

pub const START_TIMEOUT: Duration = Duration::from_secs(20);

impl Escalator {
    pub fn start(dir: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        let data = dir.join("data");
        let endpoint = format!("ipc://{}/escalator.sock", dir.display());
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let daemon = Self::launch(&data, &endpoint, &extra)?;
        Ok(Self {
            daemon,
            endpoint,
            data,
            extra,
        })
    }

    fn launch(data: &Path, endpoint: &str, extra: &[String]) -> anyhow::Result<Daemon> {
        let mut args = vec![
            "escalator".to_owned(),
            "--data".to_owned(),
            data.display().to_string(),
            "--bind".to_owned(),
            endpoint.to_owned(),
        ];
        args.extend(extra.iter().cloned());
        let d = Daemon::spawn(&args)?;
        d.events.wait("escalator_started", START_TIMEOUT)?;
        Ok(d)
    }

    /// Starts a new process on the same data dir and endpoint.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.daemon = Self::launch(&self.data, &self.endpoint, &self.extra)?;
        Ok(())
    }

    pub fn client(&self) -> anyhow::Result<vigie_escalator::Client> {
        Ok(vigie_escalator::Client::connect(&self.endpoint)?)
    }
}

impl Daemon {
    /// `vigie agent` for `host`: a plug behind a CURVE DEALER to the
    /// majordomo at `tower` (whose public key is `tower_key`), holding the
    /// secret key file `key`, its host a directory `root`, its journal in
    /// `state`, heartbeating every 100 ms.
    pub fn agent(
        tower: &str,
        tower_key: &str,
        key: &Path,
        host: &str,
        root: &Path,
        state: &Path,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(root)?;
        let (key, root, state) = (
            key.display().to_string(),
            root.display().to_string(),
            state.display().to_string(),
        );
        Self::spawn(&[
            "agent",
            "--tower",
            tower,
            "--tower-key",
            tower_key.trim(),
            "--key",
            &key,
            "--host",
            host,
            "--root",
            &root,
            "--state",
            &state,
            "--heartbeat-ms",
            "100",
        ])
    }
}
