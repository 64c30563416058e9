//! The `Launcher` harness: runs the real `vigie start --setup` in a temp
//! dir from a [`Setup`], waits until the tower is ready and every host is
//! online, exposes the event stream (the launcher's own events and every
//! child's, each with its `source`), kills and restarts the launcher or any
//! of its children, and drives the CLI and the API against the tower.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use vigie_client::ApiClient;
use vigie_wire::tower::{Caller, ChangeView};

use crate::daemon::{vigie_bin, Daemon, Witness, START_TIMEOUT};
use crate::events::{Event, EventLog};
use crate::setup::Setup;

pub struct Launcher {
    pub dir: tempfile::TempDir,
    pub setup: Setup,
    pub file: PathBuf,
    pub daemon: Daemon,
    /// Plugs started by the test itself, outside the launcher.
    pub standalone: BTreeMap<String, Daemon>,
    standalone_labels: HashMap<String, Vec<String>>,
    /// The network namespace the tower runs in, if not the test's.
    netns: Option<String>,
}

/// An internal endpoint where the launcher puts it by default.
fn ep(dir: &Path, n: &str) -> String {
    format!("ipc://{}/data/run/{n}.sock", dir.display())
}

impl Launcher {
    /// Starts a tower and waits until it is ready and its hosts online.
    pub fn start(setup: Setup) -> anyhow::Result<Self> {
        Self::start_with(setup, |f, env| {
            Daemon::spawn_env(None, env, &["start", "--setup", f])
        })
    }

    /// Like `start`, with variables added to the environment of the
    /// launcher and of every child (`VIGIE_LOG`, say).
    pub fn start_env(setup: Setup, env: &[(&str, &Path)]) -> anyhow::Result<Self> {
        Self::start_with(setup, |f, base| {
            let all: Vec<(&str, &Path)> = base.iter().chain(env).copied().collect();
            Daemon::spawn_env(None, &all, &["start", "--setup", f])
        })
    }

    /// Starts the tower inside a network namespace (its own machine); its
    /// ipc endpoints stay reachable from the test through the filesystem.
    pub fn start_in_netns(setup: Setup, netns: &str) -> anyhow::Result<Self> {
        let mut l = Self::start_with(setup, |f, env| {
            Daemon::spawn_env(Some(netns), env, &["start", "--setup", f])
        })?;
        l.netns = Some(netns.to_owned());
        Ok(l)
    }

    /// Like `start`, with a [`Witness`] held by the launcher and every
    /// process it starts.
    pub fn start_witnessed(setup: Setup) -> anyhow::Result<(Self, Witness)> {
        let mut w = None;
        let l = Self::start_with(setup, |f, env| {
            let (d, witness) = Daemon::spawn_witnessed(env, &["start", "--setup", f])?;
            w = Some(witness);
            Ok(d)
        })?;
        Ok((l, w.context("witness")?))
    }

    /// Starts a standby tower of an HA group: `keys` (the first tower's
    /// `DATA/keys`: the group's front-door key and admin) copied into its
    /// data dir first, as at set-up; in `netns` if given; returns once it
    /// says `tower_standby`.
    pub fn start_standby(setup: Setup, keys: &Path, netns: Option<&str>) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("vigie-tower-").tempdir()?;
        let file = setup.write(dir.path())?;
        let to = dir.path().join("data").join("keys");
        std::fs::create_dir_all(&to)?;
        for f in std::fs::read_dir(keys)? {
            let f = f?;
            std::fs::copy(f.path(), to.join(f.file_name()))?;
        }
        let daemon = Self::launch(&file, netns)?;
        let l = Self {
            dir,
            setup,
            file,
            daemon,
            standalone: BTreeMap::new(),
            standalone_labels: HashMap::new(),
            netns: netns.map(str::to_owned),
        };
        l.events().wait("tower_standby", START_TIMEOUT)?;
        Ok(l)
    }

    /// Writes the setup in a new temp dir, runs the launcher on it with
    /// `spawn` (given the setup file), and waits until the tower is ready.
    fn start_with(
        setup: Setup,
        spawn: impl FnOnce(&str, &[(&str, &Path)]) -> anyhow::Result<Daemon>,
    ) -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("vigie-tower-").tempdir()?;
        let file = setup.write(dir.path())?;
        let xdg = Self::xdg(dir.path());
        let daemon = spawn(&file.display().to_string(), &[("XDG_CONFIG_HOME", &xdg)])?;
        let l = Self {
            dir,
            setup,
            file,
            daemon,
            standalone: BTreeMap::new(),
            standalone_labels: HashMap::new(),
            netns: None,
        };
        l.wait_ready()?;
        Ok(l)
    }

    /// The test's own XDG config dir: `vigie start` writes the admin's CLI
    /// config there, and the CLI run by `cli` finds it there, as on a real
    /// tower.
    fn xdg(dir: &Path) -> PathBuf {
        dir.join("xdg")
    }

    /// Runs the launcher on `file`, in `netns` when the tower has one.
    fn launch(file: &Path, netns: Option<&str>) -> anyhow::Result<Daemon> {
        let f = file.display().to_string();
        let xdg = Self::xdg(file.parent().context("setup file dir")?);
        Daemon::spawn_env(
            netns,
            &[("XDG_CONFIG_HOME", &xdg)],
            &["start", "--setup", f.as_str()],
        )
    }

    fn wait_ready(&self) -> anyhow::Result<()> {
        self.events().wait("tower_ready", START_TIMEOUT)?;
        for h in &self.setup.hosts {
            self.wait_online(h.id.as_str(), 1)?;
        }
        Ok(())
    }

    /// Waits for the `n`-th `host_online` of `host` at the referee.
    fn wait_online(&self, host: &str, n: usize) -> anyhow::Result<Event> {
        let what = format!("host_online {host}");
        self.events().wait_n(&what, n, START_TIMEOUT, |e| {
            e.name == "host_online" && e.str("host") == Some(host)
        })
    }

    /// The network namespace the tower runs in, if not the test's.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    pub fn events(&self) -> &EventLog {
        &self.daemon.events
    }

    /// Waits for `n` events named `name` from `source` (a child's name, or
    /// `launcher`).
    pub fn wait_from(
        &self,
        source: &str,
        name: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Event> {
        let what = format!("{name} from {source}");
        self.events().wait_n(&what, n, timeout, |e| {
            e.name == name && e.str("source") == Some(source)
        })
    }

    /// Waits until `host` has had `n` steps succeed.
    pub fn until_step_succeeded(
        &self,
        host: &str,
        n: usize,
        timeout: Duration,
    ) -> anyhow::Result<Event> {
        let what = format!("step_succeeded on {host}");
        self.events().wait_n(&what, n, timeout, |e| {
            e.name == "step_succeeded" && e.str("host") == Some(host)
        })
    }

    /// Waits until `n` changes have finished (any outcome).
    pub fn until_changes_finished(&self, n: usize, timeout: Duration) -> anyhow::Result<Event> {
        self.events().wait_n("change_finished", n, timeout, |e| {
            e.name == "change_finished"
        })
    }

    /// The pid of a running child (`escalator`, `referee`, `plug:<host>`).
    pub fn child_pid(&self, name: &str) -> anyhow::Result<Pid> {
        let started = self
            .events()
            .snapshot()
            .into_iter()
            .rev()
            .find(|e| e.name == "child_started" && e.str("name") == Some(name))
            .with_context(|| format!("no child {name} was started"))?;
        let pid = started.u64("pid").context("pid")?;
        Ok(Pid::from_raw(i32::try_from(pid)?))
    }

    /// Every child pid the launcher ever started.
    pub fn all_child_pids(&self) -> Vec<Pid> {
        self.events()
            .snapshot()
            .into_iter()
            .filter(|e| e.name == "child_started")
            .filter_map(|e| e.u64("pid"))
            .filter_map(|p| i32::try_from(p).ok())
            .map(Pid::from_raw)
            .collect()
    }

    /// SIGKILLs a child and waits until the launcher restarted it and it is
    /// ready again.
    pub fn kill_child(&self, name: &str) -> anyhow::Result<()> {
        let ready = match name {
            "escalator" => "escalator_started",
            "referee" => "referee_started",
            "majordomo" => "majordomo_started",
            "deployd" => "deployd_started",
            _ => "plug_started",
        };
        let before = self.count_from(name, ready);
        kill(self.child_pid(name)?, Signal::SIGKILL)?;
        self.wait_from(name, ready, before + 1, START_TIMEOUT)?;
        Ok(())
    }

    fn count_from(&self, source: &str, name: &str) -> usize {
        self.events()
            .snapshot()
            .iter()
            .filter(|e| e.name == name && e.str("source") == Some(source))
            .count()
    }

    /// SIGTERM to the launcher; waits for its exit.
    pub fn quit(&mut self) -> anyhow::Result<ExitStatus> {
        self.daemon.terminate()
    }

    /// SIGKILL to the launcher itself.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        self.daemon.kill9()
    }

    /// Starts the launcher again on the same setup and data (in the same
    /// network namespace).
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.daemon = Self::launch(&self.file, self.netns.as_deref())?;
        self.wait_ready()
    }

    pub fn root(&self, host: &str) -> PathBuf {
        Setup::root(self.dir.path(), host)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A daemon's endpoint: an internal one (`api`, `orders`, ...) or
    /// `majordomo`.
    pub fn endpoint(&self, name: &str) -> String {
        match (name, &self.setup.majordomo) {
            ("majordomo", Some(set)) => set.clone(),
            ("majordomo", None) => format!("ipc://{}/majordomo.sock", self.dir.path().display()),
            _ => ep(self.dir.path(), name),
        }
    }

    /// A plug started by the test, outside the launcher (a host that joins
    /// later); returns once the referee counts it online.
    pub fn start_plug(&mut self, host: &str, labels: &[&str]) -> anyhow::Result<()> {
        std::fs::create_dir_all(self.root(host))?;
        self.standalone_labels.insert(
            host.to_owned(),
            labels.iter().map(|s| s.to_string()).collect(),
        );
        let seen = self
            .events()
            .snapshot()
            .iter()
            .filter(|e| e.name == "host_online" && e.str("host") == Some(host))
            .count();
        let (root, state) = (
            self.root(host),
            self.dir.path().join("standalone").join(host),
        );
        let mut args: Vec<String> = ["plug", "--host", host, "--heartbeat-ms", "100"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend([
            "--events".into(),
            self.endpoint("events"),
            "--orders".into(),
            self.endpoint("orders"),
        ]);
        args.extend([
            "--root".into(),
            root.display().to_string(),
            "--state".into(),
            state.display().to_string(),
        ]);
        for l in self.standalone_labels.get(host).into_iter().flatten() {
            args.extend(["--label".into(), l.clone()]);
        }
        let d = Daemon::spawn(&args)?;
        d.events.wait("plug_started", START_TIMEOUT)?;
        self.standalone.insert(host.to_owned(), d);
        self.wait_online(host, seen + 1)?;
        Ok(())
    }

    /// Kills (SIGKILL) a plug the test started: its host is lost until
    /// `start_plug` brings it back on the same journal.
    pub fn kill_plug(&mut self, host: &str) -> anyhow::Result<()> {
        let mut d = self
            .standalone
            .remove(host)
            .with_context(|| format!("no plug of {host} started by the test"))?;
        d.kill9()
    }

    pub fn caller() -> Caller {
        Caller::internal("default", "tester")
    }

    /// A client straight to the referee (inside the tower, every host of
    /// the default tenant): for the test's own bookkeeping.
    pub fn api(&self) -> anyhow::Result<ApiClient> {
        let mut c = ApiClient::direct(
            &self.endpoint("api"),
            &self.endpoint("orders"),
            Self::caller(),
        )?;
        c.set_timeout(Duration::from_secs(30));
        Ok(c)
    }

    /// Runs the operator's CLI `vigie ARGS...` as the tower's admin would
    /// on the tower: through the majordomo, with the config `vigie start`
    /// wrote at first start; returns its output.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(vigie_bin());
                c
            }
            None => Command::new(vigie_bin()),
        };
        cmd.args(args)
            .env("XDG_CONFIG_HOME", Self::xdg(self.dir.path()))
            .env_remove("VIGIE_CONFIG")
            .output()
            .context("running the vigie CLI")
    }

    /// Like [`Launcher::cli`], with `input` on the CLI's stdin (a secret's
    /// value: never on the command line).
    pub fn cli_input(&self, args: &[&str], input: &[u8]) -> anyhow::Result<Output> {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = Command::new(vigie_bin())
            .args(args)
            .env("XDG_CONFIG_HOME", Self::xdg(self.dir.path()))
            .env_remove("VIGIE_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("running the vigie CLI")?;
        child.stdin.take().context("stdin")?.write_all(input)?;
        child.wait_with_output().context("the vigie CLI's output")
    }

    /// Waits until every change in `ids` is final, on the referee's
    /// published updates; fails after `timeout` listing those still open.
    pub fn wait_final(&self, ids: &[String], timeout: Duration) -> anyhow::Result<Vec<ChangeView>> {
        Ok(self.api()?.follow(ids, Some(timeout), |_, _| {})?)
    }
}
