//! Starting, watching and stopping the children.
//!
//! One thread runs the loop below; for each child two helper threads turn
//! its stderr lines and its exit into messages on one channel, tagged with
//! the child's generation so that news from a previous incarnation is
//! ignored. Start order: metrics, escalator, referee, majordomo and the
//! provisioner, then every plug;
//! stop order is the reverse. What follows a crash is `restart`'s decision:
//! always a restart, after a back-off. Every change of a child's state is
//! published as the health snapshot (`tower_health`), which the referee
//! keeps for `vigie tower status` and the metrics daemon for its gauges.

use std::io::{BufRead, BufReader};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::child_args;
use crate::error::LauncherError;
use crate::events::{fields, Events};
use crate::restart::{after_crash, AfterCrash};
use crate::setup::{HostSetup, Setup};
use vigie_wire::lifecycle::{DaemonHealth, DaemonState, LifecycleEvent, TowerHealth};

#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// The `vigie` binary the children run.
    pub exe: PathBuf,
    /// Write events as JSON lines.
    pub json: bool,
    /// Publish events without writing them (the demo prints its own story).
    pub quiet: bool,
    /// Also hand every event to this channel (in-process observers).
    pub observer: Option<mpsc::Sender<LifecycleEvent>>,
}

/// How the launcher ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Asked to stop; every child stopped within its grace period.
    Clean,
    /// Asked to stop; some child had to be killed or exited badly.
    Unclean,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Starting,
    Ready,
    /// Crashed; to be started again at this instant.
    Backoff(Instant),
    Stopped,
}

struct Child {
    name: String,
    args: Vec<String>,
    /// The event that says it is ready.
    ready_event: &'static str,
    gen: u64,
    pid: Option<Pid>,
    started: Instant,
    state: State,
    fast_crashes: u32,
    restarts: u32,
    /// The back-off before the pending restart.
    backoff: Duration,
    /// When `state` last changed (unix ms).
    since_ms: u64,
    /// The last exit while the tower ran, and when (unix ms).
    last_exit: Option<(String, u64)>,
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Child {
    fn set_state(&mut self, state: State) {
        self.state = state;
        self.since_ms = unix_ms();
    }

    fn health(&self, now: Instant, now_ms: u64) -> DaemonHealth {
        let state = match self.state {
            State::Starting => DaemonState::Starting,
            State::Ready => DaemonState::Running,
            State::Backoff(at) => DaemonState::BackingOff {
                until_ms: now_ms + at.saturating_duration_since(now).as_millis() as u64,
            },
            State::Stopped => DaemonState::Stopped,
        };
        DaemonHealth {
            name: self.name.clone(),
            state,
            since_ms: self.since_ms,
            restarts: self.restarts,
            last_exit: self.last_exit.as_ref().map(|(s, _)| s.clone()),
            last_exit_ms: self.last_exit.as_ref().map(|(_, at)| *at),
        }
    }
}

enum Msg {
    Line {
        idx: usize,
        gen: u64,
        line: String,
    },
    Exit {
        idx: usize,
        gen: u64,
        status: ExitStatus,
    },
}

fn status_fields(status: &ExitStatus) -> (Value, Value, String) {
    match (status.code(), status.signal()) {
        (Some(c), _) => (json!(c), Value::Null, format!("exit {c}")),
        (None, Some(s)) => {
            let name = Signal::try_from(s)
                .map(|s| s.as_str().to_owned())
                .unwrap_or_else(|_| s.to_string());
            (Value::Null, json!(name), format!("killed by {name}"))
        }
        _ => (Value::Null, Value::Null, "unknown".into()),
    }
}

/// The children of a tower; `lease`: an HA tower's, fencing its escalator.
fn children(setup: &Setup, lease: Option<i64>) -> Vec<Vec<Child>> {
    let child = |name: String, args: Vec<String>, ready_event| Child {
        name,
        args,
        ready_event,
        gen: 0,
        pid: None,
        started: Instant::now(),
        state: State::Stopped,
        fast_crashes: 0,
        restarts: 0,
        backoff: Duration::ZERO,
        since_ms: unix_ms(),
        last_exit: None,
    };
    let plug = |h: &HostSetup| {
        let args = child_args::plug(setup, h);
        child(format!("plug:{}", h.id), args, "plug_started")
    };
    vec![
        // First, so that it counts every other child's events from the start.
        vec![child(
            "metrics".into(),
            child_args::metrics(setup),
            "metrics_started",
        )],
        vec![child(
            "escalator".into(),
            child_args::escalator(setup, lease),
            "escalator_started",
        )],
        vec![child(
            "referee".into(),
            child_args::referee(setup),
            "referee_started",
        )],
        // The front door (without it no operator reaches the tower), and
        // the provisioner and the deploy daemon, after the referee they
        // talk to: what they were doing resumes when it is back after a
        // crash.
        vec![
            child(
                "majordomo".into(),
                child_args::majordomo(setup),
                "majordomo_started",
            ),
            child(
                "provisioner".into(),
                child_args::provisioner(setup),
                "provisioner_started",
            ),
            child(
                "deployd".into(),
                child_args::deployd(setup),
                "deployd_started",
            ),
            // The console calls the referee as its operators.
            child("web".into(), child_args::web(setup), "web_started"),
        ],
        setup.hosts.iter().map(plug).collect(),
    ]
}

struct Supervisor {
    setup: Setup,
    opts: LaunchOptions,
    events: Events,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    children: Vec<Child>,
    /// Indexes of `children`, by start group.
    groups: Vec<Vec<usize>>,
}

impl Supervisor {
    /// The children in their start groups (`groups` holds indexes into
    /// `children`).
    fn new(setup: Setup, opts: LaunchOptions, events: Events, lease: Option<i64>) -> Self {
        let (tx, rx) = mpsc::channel();
        let mut all = Vec::new();
        let mut groups = Vec::new();
        for g in children(&setup, lease) {
            let mut idx = Vec::new();
            for c in g {
                idx.push(all.len());
                all.push(c);
            }
            groups.push(idx);
        }
        Supervisor {
            setup,
            opts,
            events,
            tx,
            rx,
            children: all,
            groups,
        }
    }

    /// How long the loop may wait: until the next restart due, at most
    /// 100 ms.
    fn wait(&self) -> Duration {
        let next = self
            .children
            .iter()
            .filter_map(|c| match c.state {
                State::Backoff(at) => Some(at),
                _ => None,
            })
            .min();
        next.map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::from_millis(100))
            .min(Duration::from_millis(100))
    }
}

impl Supervisor {
    /// Publishes every child's state (on each change, and to each new
    /// subscriber).
    fn publish_health(&self) {
        let (now, now_ms) = (Instant::now(), unix_ms());
        self.events.health(&TowerHealth {
            at_ms: now_ms,
            daemons: self
                .children
                .iter()
                .map(|c| c.health(now, now_ms))
                .collect(),
        });
    }

    fn spawn(&mut self, idx: usize) -> Result<(), LauncherError> {
        let c = &mut self.children[idx];
        c.gen += 1;
        let mut cmd = Command::new(&self.opts.exe);
        cmd.arg("--log-json")
            .args(&c.args)
            .env(crate::PARENT_PID_ENV, std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // Its own process group: a Ctrl-C in the terminal reaches the
            // launcher only, which then stops the children in order.
            .process_group(0);
        let mut proc = cmd
            .spawn()
            .map_err(|e| LauncherError::io(&self.opts.exe, e))?;
        let pid = Pid::from_raw(i32::try_from(proc.id()).unwrap_or(0));
        let (gen, tx) = (c.gen, self.tx.clone());
        if let Some(stderr) = proc.stderr.take() {
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    if tx.send(Msg::Line { idx, gen, line }).is_err() {
                        return;
                    }
                }
            });
        }
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            if let Ok(status) = proc.wait() {
                let _ = tx.send(Msg::Exit { idx, gen, status });
            }
        });
        c.pid = Some(pid);
        c.started = Instant::now();
        c.set_state(State::Starting);
        let f = fields([("name", json!(c.name)), ("pid", json!(pid.as_raw()))]);
        self.events.emit("launcher", "child_started", f);
        self.publish_health();
        Ok(())
    }

    /// Handles one message.
    fn handle(&mut self, msg: Msg, stopping: bool) {
        match msg {
            Msg::Line { idx, gen, line } => {
                let c = &mut self.children[idx];
                let name = self.events.forward(&c.name, &line);
                if gen == c.gen
                    && c.state == State::Starting
                    && name.as_deref() == Some(c.ready_event)
                {
                    c.set_state(State::Ready);
                    self.publish_health();
                }
            }
            Msg::Exit { idx, gen, status } => {
                if gen == self.children[idx].gen {
                    self.exited(idx, status, stopping);
                }
            }
        }
    }

    fn exited(&mut self, idx: usize, status: ExitStatus, stopping: bool) {
        let sup = self.setup.supervision.clone();
        let c = &mut self.children[idx];
        c.pid = None;
        let uptime = c.started.elapsed();
        let (code, signal, text) = status_fields(&status);
        self.events.emit(
            "launcher",
            "child_exited",
            fields([
                ("name", json!(c.name)),
                ("status", json!(text)),
                ("code", code),
                ("signal", signal),
                ("uptime_ms", json!(uptime.as_millis() as u64)),
            ]),
        );
        if stopping {
            c.set_state(State::Stopped);
            self.publish_health();
            return;
        }
        c.last_exit = Some((text.clone(), unix_ms()));
        c.fast_crashes = if uptime < sup.fast_crash_window {
            c.fast_crashes.saturating_add(1)
        } else {
            1
        };
        let AfterCrash {
            after,
            ceiling_reached,
        } = after_crash(&sup, c.fast_crashes);
        c.set_state(State::Backoff(Instant::now() + after));
        c.backoff = after;
        let name = c.name.clone();
        let crashes = c.fast_crashes;
        // The snapshot first: whoever reads `child_backoff` and then asks
        // the tower finds the referee already told.
        self.publish_health();
        self.events.emit(
            "launcher",
            "child_backoff",
            fields([
                ("name", json!(name)),
                ("crashes", json!(crashes)),
                ("backoff_ms", json!(after.as_millis() as u64)),
                ("status", json!(text)),
            ]),
        );
        if ceiling_reached {
            let f = fields([
                ("name", json!(name)),
                ("crashes", json!(crashes)),
                ("backoff_ms", json!(after.as_millis() as u64)),
            ]);
            self.events.emit("launcher", "child_backoff_ceiling", f);
        }
    }

    /// Starts one group and waits until every member is ready.
    fn start_group(&mut self, g: usize, shutdown: &AtomicBool) -> Result<(), LauncherError> {
        let members = self.groups[g].clone();
        for &i in &members {
            self.spawn(i)?;
        }
        let deadline = Instant::now() + self.setup.supervision.ready_timeout;
        while members
            .iter()
            .any(|&i| self.children[i].state != State::Ready)
        {
            if shutdown.load(Ordering::Relaxed) {
                return Err(LauncherError::NotReady {
                    name: "tower".into(),
                    reason: "asked to stop while starting".into(),
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let slow = || {
                members
                    .iter()
                    .map(|&i| &self.children[i])
                    .find(|c| c.state != State::Ready)
                    .map(|c| c.name.clone())
                    .unwrap_or_default()
            };
            if left.is_zero() {
                return Err(LauncherError::NotReady {
                    name: slow(),
                    reason: format!(
                        "no readiness within {:?}",
                        self.setup.supervision.ready_timeout
                    ),
                });
            }
            if self.events.health_wanted() {
                self.publish_health();
            }
            match self.next(left.min(Duration::from_millis(100))) {
                Ok(Msg::Exit { idx, gen, status })
                    if gen == self.children[idx].gen && members.contains(&idx) =>
                {
                    let name = self.children[idx].name.clone();
                    self.exited(idx, status, true);
                    return Err(LauncherError::NotReady {
                        name,
                        reason: format!("it exited while starting ({})", status_fields(&status).2),
                    });
                }
                Ok(msg) => self.handle(msg, false),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        Ok(())
    }

    /// The next message, waiting at most `wait`; the buffered log lines
    /// are written before the loop waits.
    fn next(&mut self, wait: Duration) -> Result<Msg, RecvTimeoutError> {
        match self.rx.try_recv() {
            Ok(msg) => return Ok(msg),
            Err(mpsc::TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
            Err(mpsc::TryRecvError::Empty) => {}
        }
        self.events.flush();
        self.rx.recv_timeout(wait)
    }

    fn restart_due(&mut self) -> Result<(), LauncherError> {
        let now = Instant::now();
        for i in 0..self.children.len() {
            if let State::Backoff(at) = self.children[i].state {
                if now >= at {
                    self.children[i].restarts += 1;
                    let c = &self.children[i];
                    let f = fields([
                        ("name", json!(c.name)),
                        ("attempt", json!(c.restarts)),
                        ("crashes", json!(c.fast_crashes)),
                        ("backoff_ms", json!(c.backoff.as_millis() as u64)),
                    ]);
                    self.events.emit("launcher", "child_restarted", f);
                    self.spawn(i)?;
                }
            }
        }
        Ok(())
    }

    /// Stops the children in reverse start order: SIGTERM, a grace period,
    /// then SIGKILL. Returns whether every one stopped by itself.
    /// The loop of a running tower, until `shutdown` — or, for an HA
    /// tower, until its lease is lost (`tower_deposed`, returns true): then
    /// it stops like on SIGTERM (its escalator's writes already refused by
    /// etcd) and exits unclean, to come back as a standby.
    fn supervise(
        &mut self,
        shutdown: &AtomicBool,
        lead: Option<&crate::ha::Keeper>,
    ) -> Result<bool, LauncherError> {
        while !shutdown.load(Ordering::Relaxed) {
            let wait = self.wait();
            if self.events.health_wanted() {
                self.publish_health();
            }
            match self.next(wait) {
                Ok(msg) => self.handle(msg, false),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.restart_due()?;
            if let Some(crate::ha::Deposed(why)) = lead.and_then(|k| k.deposed()) {
                let f = fields([("reason", json!(why))]);
                self.events.emit("launcher", "tower_deposed", f);
                return Ok(true);
            }
        }
        Ok(false)
    }

    fn stop_all(&mut self) -> bool {
        let mut clean = true;
        let groups = self.groups.clone();
        for group in groups.iter().rev() {
            let live: Vec<usize> = group
                .iter()
                .copied()
                .filter(|&i| self.children[i].pid.is_some())
                .collect();
            for &i in &live {
                if let Some(pid) = self.children[i].pid {
                    let _ = kill(pid, Signal::SIGTERM);
                }
            }
            let deadline = Instant::now() + self.setup.supervision.grace;
            let mut killed = false;
            while live.iter().any(|&i| self.children[i].pid.is_some()) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() && !killed {
                    for &i in &live {
                        if let Some(pid) = self.children[i].pid {
                            let f = fields([("name", json!(self.children[i].name))]);
                            self.events.emit("launcher", "child_killed", f);
                            let _ = kill(pid, Signal::SIGKILL);
                        }
                    }
                    killed = true;
                    clean = false;
                }
                let wait = if killed { Duration::from_secs(5) } else { left };
                match self.next(wait) {
                    Ok(Msg::Exit { idx, gen, status }) if gen == self.children[idx].gen => {
                        clean &= status.success();
                        self.exited(idx, status, true);
                    }
                    Ok(msg) => self.handle(msg, true),
                    Err(RecvTimeoutError::Timeout) if killed => break,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            }
        }
        clean
    }
}

/// Runs a tower from its setup until `shutdown` is set. The data dir must
/// be locked by the caller (see `vigie start`).
pub fn run(
    setup: Setup,
    opts: LaunchOptions,
    shutdown: Arc<AtomicBool>,
) -> Result<Outcome, LauncherError> {
    let ctx = zmq::Context::new();
    let events = Events::bind(
        &ctx,
        &setup.endpoints.lifecycle,
        opts.json,
        opts.quiet,
        opts.observer.clone(),
    )?;
    let lead = match &setup.ha {
        None => None,
        Some(ha) => match crate::ha::elect(ha, &events, &shutdown) {
            Some(lead) => Some(lead.keep()),
            // Stopped while standby: nothing was started.
            None => return Ok(Outcome::Clean),
        },
    };
    let hosts: Vec<String> = setup.hosts.iter().map(|h| h.id.clone()).collect();
    crate::keys::ensure_plug_keys(&setup.data_dir, &hosts)?;
    let mut sup = Supervisor::new(setup, opts, events, lead.as_ref().map(|k| k.lease));
    let f = fields([
        ("name", json!(sup.setup.name)),
        ("data_dir", json!(sup.setup.data_dir.display().to_string())),
        ("pid", json!(std::process::id())),
        ("lifecycle", json!(sup.setup.endpoints.lifecycle)),
    ]);
    sup.events.emit("launcher", "launcher_started", f);
    for g in 0..sup.groups.len() {
        if let Err(e) = sup.start_group(g, &shutdown) {
            let f = fields([("reason", json!(e.to_string()))]);
            sup.events.emit("launcher", "start_failed", f);
            sup.stop_all();
            sup.events.emit(
                "launcher",
                "launcher_stopped",
                fields([("clean", json!(false))]),
            );
            return Err(e);
        }
    }
    let f = fields([
        ("name", json!(sup.setup.name)),
        ("hosts", json!(sup.setup.hosts.len())),
        ("api", json!(sup.setup.endpoints.api)),
    ]);
    sup.events.emit("launcher", "tower_ready", f);

    let deposed = sup.supervise(&shutdown, lead.as_ref())?;
    sup.events.emit("launcher", "launcher_stopping", fields([]));
    let clean = sup.stop_all() && !deposed;
    if let Some(k) = lead {
        k.resign();
    }
    sup.events.emit(
        "launcher",
        "launcher_stopped",
        fields([("clean", json!(clean))]),
    );
    Ok(if clean {
        Outcome::Clean
    } else {
        Outcome::Unclean
    })
}
