//! A whole tower of real processes for end-to-end tests: an escalator, a
//! referee and plugs (local driver), on ipc endpoints in a temp dir.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::Context;
use vigie_referee::{ApiClient, Watcher};
use vigie_wire::tower::{ApiCall, Caller, ChangeView};

use crate::daemon::{vigie_bin, Daemon, Escalator, START_TIMEOUT};

pub struct Tower {
    pub dir: tempfile::TempDir,
    pub escalator: Escalator,
    pub referee: Daemon,
    pub plugs: BTreeMap<String, Daemon>,
    labels: HashMap<String, Vec<String>>,
    api: String,
    events: String,
    orders: String,
}

impl Tower {
    pub fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("vigie-tower-").tempdir()?;
        let escalator = Escalator::start(dir.path(), &[])?;
        let ep = |n: &str| format!("ipc://{}/{n}.sock", dir.path().display());
        let (api, events, orders) = (ep("api"), ep("events"), ep("orders"));
        let referee = Self::launch_referee(&escalator.endpoint, &api, &events, &orders)?;
        Ok(Self {
            dir,
            escalator,
            referee,
            plugs: BTreeMap::new(),
            labels: HashMap::new(),
            api,
            events,
            orders,
        })
    }

    fn launch_referee(esc: &str, api: &str, events: &str, orders: &str) -> anyhow::Result<Daemon> {
        let d = Daemon::spawn(&[
            "referee",
            "--escalator",
            esc,
            "--api",
            api,
            "--events",
            events,
            "--orders",
            orders,
            // Short timers keep tests quick; the behaviour is the same.
            "--host-timeout-ms",
            "1000",
            "--resend-ms",
            "300",
        ])?;
        d.events.wait("referee_started", START_TIMEOUT)?;
        Ok(d)
    }

    /// SIGKILLs the referee and starts a new one on the same state.
    pub fn restart_referee(&mut self) -> anyhow::Result<()> {
        self.referee.kill9()?;
        self.referee = Self::launch_referee(
            &self.escalator.endpoint,
            &self.api,
            &self.events,
            &self.orders,
        )?;
        Ok(())
    }

    pub fn root(&self, host: &str) -> PathBuf {
        self.dir.path().join("hosts").join(host).join("root")
    }

    fn state(&self, host: &str) -> PathBuf {
        self.dir.path().join("hosts").join(host).join("state")
    }

    /// Creates a host's root (if new) and starts its plug; returns once the
    /// plug runs (its journal replayed).
    pub fn start_plug(&mut self, host: &str, labels: &[&str]) -> anyhow::Result<()> {
        let root = self.root(host);
        std::fs::create_dir_all(&root)?;
        self.labels.insert(
            host.to_owned(),
            labels.iter().map(|s| s.to_string()).collect(),
        );
        self.launch_plug(host, true)
    }

    /// `wait_online`: also wait until the referee counts the host online
    /// (only meaningful when it was offline before).
    fn launch_plug(&mut self, host: &str, wait_online: bool) -> anyhow::Result<()> {
        let mut args: Vec<String> = [
            "plug",
            "--host",
            host,
            "--events",
            &self.events,
            "--orders",
            &self.orders,
            "--heartbeat-ms",
            "100",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--root".into(), self.root(host).display().to_string()]);
        args.extend(["--state".into(), self.state(host).display().to_string()]);
        for l in self.labels.get(host).into_iter().flatten() {
            args.extend(["--label".into(), l.clone()]);
        }
        let online = |e: &crate::Event| e.name == "host_online" && e.str("host") == Some(host);
        let seen = self
            .referee
            .events
            .snapshot()
            .iter()
            .filter(|e| online(e))
            .count();
        let d = Daemon::spawn(&args)?;
        d.events.wait("plug_started", START_TIMEOUT)?;
        self.plugs.insert(host.to_owned(), d);
        if wait_online {
            self.referee
                .events
                .wait_n("host_online", seen + 1, START_TIMEOUT, online)?;
        }
        Ok(())
    }

    /// SIGKILLs a plug and starts it again on the same root and journal.
    pub fn restart_plug(&mut self, host: &str) -> anyhow::Result<()> {
        if let Some(mut d) = self.plugs.remove(host) {
            d.kill9()?;
        }
        self.launch_plug(host, false)
    }

    pub fn caller() -> Caller {
        Caller {
            tenant: "default".into(),
            operator: "tester".into(),
        }
    }

    pub fn api(&self) -> anyhow::Result<ApiClient> {
        let mut c = ApiClient::connect(&self.api, Self::caller())?;
        c.set_timeout(Duration::from_secs(30));
        Ok(c)
    }

    /// Runs `vigie ARGS... --referee .. --orders ..` and returns its output.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<Output> {
        Command::new(vigie_bin())
            .args(args)
            .args([
                "--referee",
                &self.api,
                "--orders",
                &self.orders,
                "--operator",
                "tester",
            ])
            .output()
            .context("running the vigie CLI")
    }

    pub fn orders_endpoint(&self) -> &str {
        &self.orders
    }

    /// Waits until every change in `ids` is final, on the referee's
    /// published updates; fails after `timeout` listing those still open.
    pub fn wait_final(&self, ids: &[String], timeout: Duration) -> anyhow::Result<Vec<ChangeView>> {
        let watcher = Watcher::connect(&self.orders, &[])?;
        let mut api = self.api()?;
        let deadline = Instant::now() + timeout;
        let mut views: HashMap<String, ChangeView> = HashMap::new();
        let mut open: Vec<String> = ids.to_vec();
        loop {
            // Read the current state of what is still open; updates that
            // were published before the subscription took effect are
            // covered by this read, later ones by the watcher.
            for id in &open {
                let call = ApiCall::Status {
                    change: Some(id.clone()),
                    limit: 1,
                };
                for v in api.changes(call)? {
                    views.insert(v.id.clone(), v);
                }
            }
            open.retain(|id| !views.get(id).is_some_and(|v| v.state.is_final()));
            while !open.is_empty() {
                let left = deadline.saturating_duration_since(Instant::now());
                anyhow::ensure!(
                    !left.is_zero(),
                    "timed out after {timeout:?}: {} changes not final: {:?}",
                    open.len(),
                    open.iter()
                        .take(20)
                        .map(|id| views.get(id).map(|v| (id, v.host.clone(), v.state)))
                        .collect::<Vec<_>>()
                );
                // Silence for a while: read the open ones again.
                let Some(v) = watcher.next(left.min(Duration::from_secs(2)))? else {
                    break;
                };
                if v.state.is_final() {
                    open.retain(|id| *id != v.id);
                }
                views.insert(v.id.clone(), v);
            }
            if open.is_empty() {
                return Ok(ids.iter().filter_map(|id| views.remove(id)).collect());
            }
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}
