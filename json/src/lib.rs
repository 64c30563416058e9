//! The one JSON contract of the CLI's `--json` and the web console's API: what scripts read, converted
//! from the wire types rather than their serde form, so the wire can change
//! without breaking scripts. States and statuses are lowercase words, a
//! step is a separate field and numbered from 1 as in the text output,
//! permissions are spelled as on the command line, times are RFC 3339 (UTC,
//! milliseconds). One JSON object per line.

use std::time::Duration;

use serde::Serialize;

pub mod catalog;
use vigie_wire::change::StepResult;
use vigie_wire::front::{Grant, KeyRecord, OperatorRecord};
use vigie_wire::tower::{
    AuditRecord, ChangeState, ChangeView, HostView, StepStatus, StepView, Waiting,
};

/// A time for humans and scripts: RFC 3339 in UTC, to the millisecond.
/// Times can come from a host's clock: one that RFC 3339 cannot write
/// (past the year 9999) is shown as its raw number, never a panic.
pub fn rfc3339(ms: u64) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match std::time::UNIX_EPOCH.checked_add(Duration::from_millis(ms)) {
        Some(t) if write!(out, "{}", humantime::format_rfc3339_millis(t)).is_ok() => out,
        _ => format!("{ms} ms after the Unix epoch"),
    }
}

/// A 0-based step index of the wire as the CLI numbers steps: from 1.
pub fn step_number(index: u32) -> u32 {
    index.saturating_add(1)
}

/// A change state's parts: its word, the step it is about (numbered from
/// 1), and whether a crash interrupted it.
pub fn state_parts(s: &ChangeState) -> (&'static str, Option<u32>, bool) {
    match *s {
        ChangeState::Running { step } | ChangeState::RollingBack { step } => {
            (s.word(), Some(step_number(step)), false)
        }
        ChangeState::RolledBack {
            failed_step,
            interrupted,
            ..
        }
        | ChangeState::RollbackFailed {
            failed_step,
            interrupted,
            ..
        } => (s.word(), failed_step.map(step_number), interrupted),
        _ => (s.word(), None, false),
    }
}

/// Whether a stop of the tower ended the change (before its next step).
pub fn stopped(s: &ChangeState) -> bool {
    matches!(
        s,
        ChangeState::RolledBack { stopped: true, .. }
            | ChangeState::RollbackFailed { stopped: true, .. }
    )
}

pub fn status_word(s: StepStatus) -> &'static str {
    match s {
        StepStatus::Pending => "pending",
        StepStatus::Running => "running",
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed => "failed",
        StepStatus::Undoing => "undoing",
        StepStatus::Undone => "undone",
        StepStatus::UndoFailed => "undo_failed",
        StepStatus::Skipped => "skipped",
    }
}

#[derive(Debug, Serialize)]
pub struct ResultJson {
    pub ok: bool,
    pub summary: String,
    pub exit_code: Option<i32>,
    pub stdout_tail: String,
    pub stderr_tail: String,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub duration_ms: u64,
}

impl From<&StepResult> for ResultJson {
    fn from(r: &StepResult) -> Self {
        Self {
            ok: r.ok,
            summary: r.summary.clone(),
            exit_code: r.exit_code,
            stdout_tail: r.stdout_tail.clone(),
            stderr_tail: r.stderr_tail.clone(),
            before_digest: r.before_digest.clone(),
            after_digest: r.after_digest.clone(),
            duration_ms: r.duration_ms,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct StepJson {
    /// From 1, as `status ID` prints it.
    pub step: u32,
    pub name: String,
    pub kind: String,
    pub status: &'static str,
    pub result: Option<ResultJson>,
    pub undo: Option<ResultJson>,
}

impl StepJson {
    fn of(index: usize, s: &StepView) -> Self {
        Self {
            step: u32::try_from(index).map_or(u32::MAX, step_number),
            name: s.name.clone(),
            kind: s.kind.clone(),
            status: status_word(s.status),
            result: s.result.as_ref().map(ResultJson::from),
            undo: s.undo.as_ref().map(ResultJson::from),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ChangeJson {
    pub id: String,
    pub host: String,
    pub seq: u64,
    pub tenant: String,
    pub operator: String,
    pub title: String,
    /// queued, dispatched, running, rolling_back, succeeded, rolled_back,
    /// rollback_failed, cancelled, abandoned.
    pub state: &'static str,
    /// The step running or rolling back, or the one that failed (from 1).
    pub step: Option<u32>,
    /// Rolled back because the host's plug crashed mid-change.
    pub interrupted: bool,
    /// Rolled back because the tower was stopped mid-change.
    pub stopped: bool,
    /// No more changes of state will come.
    #[serde(rename = "final")]
    pub is_final: bool,
    pub steps: Vec<StepJson>,
    pub submitted: String,
    pub updated: String,
    /// What a queued change waits for; absent once it is under way.
    pub waiting: Option<WaitingJson>,
}

/// Why a queued change has not started.
#[derive(Debug, Serialize)]
pub struct WaitingJson {
    /// host_offline, host_held (`vigie hosts release`), behind.
    pub reason: &'static str,
    /// With `behind`: how many changes are ahead of it on its host.
    pub ahead: Option<u32>,
    /// The same for humans, as the text output says it.
    pub message: String,
}

impl WaitingJson {
    fn of(w: &Waiting, host: &str) -> Self {
        let (reason, ahead) = match *w {
            Waiting::HostOffline => ("host_offline", None),
            Waiting::HostHeld => ("host_held", None),
            Waiting::Behind { ahead } => ("behind", Some(ahead)),
        };
        Self {
            reason,
            ahead,
            message: w.text(host),
        }
    }
}

impl From<&ChangeView> for ChangeJson {
    fn from(v: &ChangeView) -> Self {
        let (state, step, interrupted) = state_parts(&v.state);
        Self {
            id: v.id.clone(),
            host: v.host.clone(),
            seq: v.seq,
            tenant: v.tenant.clone(),
            operator: v.operator.clone(),
            title: v.title.clone(),
            state,
            step,
            interrupted,
            stopped: stopped(&v.state),
            is_final: v.state.is_final(),
            steps: v
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| StepJson::of(i, s))
                .collect(),
            submitted: rfc3339(v.submitted_ms),
            updated: rfc3339(v.updated_ms),
            waiting: v.waiting.as_ref().map(|w| WaitingJson::of(w, &v.host)),
        }
    }
}

/// The changes waiting behind the running one: the wire's count includes it.
pub fn waiting(h: &HostView) -> u32 {
    h.queued.saturating_sub(u32::from(h.in_flight.is_some()))
}

#[derive(Debug, Serialize)]
pub struct HostJson {
    pub id: String,
    pub tenant: String,
    pub online: bool,
    /// Changes waiting, not counting the running one.
    pub queued: u32,
    /// The change running on the host, if any.
    pub running: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    /// What the host says of itself: shown, never trusted.
    pub reported: std::collections::BTreeMap<String, String>,
    /// Why its plug refuses orders (a full journal, a stop), if it does.
    pub refusing: Option<String>,
    /// An operator holds its queue (`vigie abandon --hold`): nothing is
    /// sent to it until `vigie hosts release`.
    pub held: bool,
    /// Why the host's plug is not running, as its launcher says
    /// (`plug restarting: exit 1, next try in 2m`), while it is offline.
    pub plug_down: Option<String>,
}

impl From<&HostView> for HostJson {
    fn from(h: &HostView) -> Self {
        Self {
            id: h.id.clone(),
            tenant: h.tenant.clone(),
            online: h.online,
            queued: waiting(h),
            running: h.in_flight.clone(),
            labels: h.labels.clone(),
            reported: h.reported.clone(),
            refusing: h.refusing.clone(),
            held: h.held,
            plug_down: h.plug_down.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct AuditJson {
    /// The number in the tower's whole chain (0 for a tenant's operator).
    pub seq: u64,
    /// The number within its tenant, from 1 without gaps: what `audit
    /// --before/--after` page with.
    pub tenant_seq: u64,
    pub at: String,
    pub tenant: String,
    pub operator: String,
    pub host: String,
    pub change: String,
    /// From 1, as in `status ID`.
    pub step: Option<u32>,
    pub action: String,
    pub summary: String,
    pub exit_code: Option<i32>,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub output_tail: String,
    pub prev_hash: String,
    pub hash: String,
}

impl From<&AuditRecord> for AuditJson {
    fn from(r: &AuditRecord) -> Self {
        Self {
            seq: r.seq,
            tenant_seq: r.tenant_seq,
            at: rfc3339(r.at_ms),
            tenant: r.tenant.clone(),
            operator: r.operator.clone(),
            host: r.host.clone(),
            change: r.change.clone(),
            step: r.step.map(step_number),
            action: r.action.clone(),
            summary: r.summary.clone(),
            exit_code: r.exit_code,
            before_digest: r.before_digest.clone(),
            after_digest: r.after_digest.clone(),
            output_tail: r.output_tail.clone(),
            prev_hash: r.prev_hash.clone(),
            hash: r.hash.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct KeyJson {
    pub public: String,
    /// Empty for a pending key: a handshake does not say which host it is.
    pub host: String,
    pub tenant: String,
    /// pending, accepted, revoked.
    pub state: &'static str,
    pub address: String,
}

impl From<&KeyRecord> for KeyJson {
    fn from(k: &KeyRecord) -> Self {
        Self {
            public: k.public.clone(),
            host: k.host.clone(),
            tenant: k.tenant.clone(),
            state: k.state.word(),
            address: k.address.clone(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct OperatorJson {
    pub name: String,
    pub tenant: String,
    /// active or revoked.
    pub state: &'static str,
    pub public: String,
    /// As `--grant` takes them: `changes.submit@web-*`.
    pub grants: Vec<String>,
}

impl From<&OperatorRecord> for OperatorJson {
    fn from(o: &OperatorRecord) -> Self {
        Self {
            name: o.name.clone(),
            tenant: o.tenant.clone(),
            state: if o.revoked { "revoked" } else { "active" },
            public: o.public.clone(),
            grants: o.grants.iter().map(Grant::to_string).collect(),
        }
    }
}

/// What a command that changes something says it did.
#[derive(Debug, Serialize)]
pub struct DoneJson {
    pub ok: bool,
    /// The command as typed: `hosts add`, `operators revoke`, …
    pub command: &'static str,
    pub message: String,
}

/// One environment the deployer deployed (`vigie deployments list|show
/// --json`): its components' instance numbers, where each service runs,
/// and (for `show`) its deploys.
#[derive(Debug, Serialize)]
pub struct DeploymentJson {
    /// `APP/ENVIRONMENT`, as `deployments show` takes it.
    pub name: String,
    pub app: String,
    pub environment: String,
    pub components: Vec<ComponentJson>,
    pub hosts: Vec<DeployedHostJson>,
    /// How many deploys were recorded.
    pub deploys: usize,
    /// Every deploy, oldest first (`show` only; `null` in `list`).
    pub history: Option<Vec<DeployJson>>,
    /// The deploy or verb the tower runs on it now (`null`: none).
    pub running: Option<RunningJson>,
}

/// A deploy or a verb the tower runs on an environment, until it ends.
#[derive(Debug, Serialize)]
pub struct RunningJson {
    pub rollout: String,
    /// `deploy`, or the verb: `rollback`, `stop`, `maintenance on`, …
    pub verb: &'static str,
    /// The one service a `stop`, `start` or `restart` acts on.
    pub service: Option<String>,
    pub operator: String,
    /// When it started (RFC 3339).
    pub since: String,
    /// Hosts a canary deploys before it waits (0: no canary).
    pub canary: u32,
    /// Waiting after its canary for `vigie deployments continue` or
    /// `abort`.
    pub waiting: bool,
    /// The word an operator gave it (`continue`, `abort`), being carried out.
    pub command: Option<&'static str>,
}

impl RunningJson {
    /// `r` while it runs (`None` once it ended).
    pub fn of(r: &vigie_wire::deploy::Rollout) -> Option<Self> {
        use vigie_wire::deploy::EnvVerb;
        if r.end.is_some() {
            return None;
        }
        let service = match &r.verb {
            Some(
                EnvVerb::Stop { service }
                | EnvVerb::Start { service }
                | EnvVerb::Restart { service },
            ) => service.clone(),
            _ => None,
        };
        Some(Self {
            rollout: r.id.clone(),
            verb: r.verb.as_ref().map_or("deploy", EnvVerb::word),
            service,
            operator: r.operator.clone(),
            since: rfc3339(r.started_ms),
            canary: r.canary,
            waiting: r.waiting && r.command.is_none(),
            command: r.command.as_ref().map(|(c, _)| c.word()),
        })
    }
}

#[derive(Debug, Serialize)]
pub struct ComponentJson {
    /// `code:SERVICE`, `database:NAME` or `cache`.
    pub component: String,
    pub instance: u32,
}

#[derive(Debug, Serialize)]
pub struct DeployedHostJson {
    pub host: String,
    pub proxy_port: Option<u16>,
    /// Left behind the maintenance page (a deploy failed after its
    /// migrations, or was cut short): `deploy --from-maintenance` moves it.
    pub maintenance: bool,
    pub services: Vec<PlacementJson>,
}

#[derive(Debug, Serialize)]
pub struct PlacementJson {
    pub service: String,
    pub instance: u32,
    pub replicas: u32,
    pub ports: Vec<u16>,
}

#[derive(Debug, Serialize)]
pub struct DeployJson {
    pub number: u32,
    /// `succeeded` or `rolled_back`.
    pub outcome: &'static str,
    /// Whether the deploy went through maintenance (pending migrations).
    pub maintenance: bool,
    pub bumped: Vec<ComponentJson>,
    /// The change sent last to each host.
    pub changes: std::collections::BTreeMap<String, String>,
    /// When it started (RFC 3339), who started it, each service's revision.
    pub at: Option<String>,
    pub operator: Option<String>,
    pub revisions: std::collections::BTreeMap<String, String>,
    /// The application catalog's version deployed (`None`: a file).
    pub version: Option<String>,
}

impl DeploymentJson {
    /// `r` as the deployer recorded it, and what runs on it now (its
    /// current rollout, if it has not ended).
    pub fn new(
        r: &vigie_deployer::EnvRecord,
        with_history: bool,
        rollout: Option<&vigie_wire::deploy::Rollout>,
    ) -> Self {
        use vigie_deployer::Outcome;
        Self {
            name: r.key.to_string(),
            app: r.key.app.to_string(),
            environment: r.key.environment.to_string(),
            components: r
                .components
                .iter()
                .map(|(c, s)| ComponentJson {
                    component: c.to_string(),
                    instance: s.instance,
                })
                .collect(),
            hosts: r
                .hosts
                .iter()
                .map(|(host, state)| DeployedHostJson {
                    host: host.clone(),
                    proxy_port: state.proxy_port,
                    maintenance: state.maintenance,
                    services: state
                        .services
                        .iter()
                        .map(|(name, p)| PlacementJson {
                            service: name.to_string(),
                            instance: p.instance,
                            replicas: p.replicas,
                            ports: p.ports.clone(),
                        })
                        .collect(),
                })
                .collect(),
            deploys: r.history.len(),
            history: with_history.then(|| {
                r.history
                    .iter()
                    .map(|d| DeployJson {
                        number: d.number,
                        outcome: match d.outcome {
                            Outcome::Succeeded => "succeeded",
                            Outcome::RolledBack => "rolled_back",
                            Outcome::InMaintenance => "in_maintenance",
                            Outcome::InProgress => "in_progress",
                        },
                        maintenance: d.maintenance,
                        bumped: d
                            .bumped
                            .iter()
                            .map(|(c, n)| ComponentJson {
                                component: c.to_string(),
                                instance: *n,
                            })
                            .collect(),
                        changes: d.changes.clone(),
                        at: d.at_ms.map(rfc3339),
                        operator: d.operator.clone(),
                        revisions: d.revisions.clone(),
                        version: d.version.clone(),
                    })
                    .collect()
            }),
            running: rollout.and_then(RunningJson::of),
        }
    }
}

#[cfg(test)]
mod running_tests {
    use vigie_wire::deploy::{EnvVerb, Rollout, RolloutCommand, RolloutEnd};

    use super::{DeploymentJson, RunningJson};

    fn rollout(verb: Option<EnvVerb>) -> Rollout {
        Rollout {
            id: "r-7".into(),
            tenant: "default".into(),
            app: "shop".into(),
            environment: "prod".into(),
            operator: "alice".into(),
            started_ms: 1_000,
            file: "environment.yml".into(),
            text: String::new(),
            parallel: 1,
            from_maintenance: false,
            canary: 0,
            waiting: false,
            command: None,
            state: Vec::new(),
            lines: Vec::new(),
            said: 0,
            end: None,
            ended_ms: None,
            unlocked_by: None,
            version: None,
            verb,
        }
    }

    /// Issue 19: `deployments list|show --json` say what runs on the
    /// environment: a verb (with its service), a canary waiting for
    /// `continue` or `abort`, nothing once it ended.
    #[test]
    fn what_runs_is_the_verb_or_a_canary_waiting_for_a_word() -> anyhow::Result<()> {
        let stop = rollout(Some(EnvVerb::Stop {
            service: Some("web".into()),
        }));
        let v = serde_json::to_value(RunningJson::of(&stop))?;
        assert_eq!(v["verb"], "stop");
        assert_eq!(v["service"], "web");
        assert_eq!(v["operator"], "alice");
        assert_eq!(v["since"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["waiting"], false);
        let mut canary = Rollout {
            canary: 1,
            waiting: true,
            ..rollout(None)
        };
        let v = serde_json::to_value(RunningJson::of(&canary))?;
        assert_eq!(
            (&v["verb"], &v["canary"], &v["waiting"]),
            (&"deploy".into(), &1.into(), &true.into())
        );
        canary.command = Some((RolloutCommand::Abort, "bob".into()));
        let v = serde_json::to_value(RunningJson::of(&canary))?;
        assert_eq!(
            (&v["waiting"], &v["command"]),
            (&false.into(), &"abort".into())
        );
        canary.end = Some(RolloutEnd::RolledBack);
        assert!(RunningJson::of(&canary).is_none());
        let key = vigie_deployer::EnvKey {
            app: vigie_deployer::Part::parse("shop").map_err(anyhow::Error::msg)?,
            environment: vigie_deployer::Part::parse("prod").map_err(anyhow::Error::msg)?,
        };
        let record = vigie_deployer::EnvRecord::new(key);
        let v = serde_json::to_value(DeploymentJson::new(&record, false, Some(&stop)))?;
        assert_eq!(v["running"]["rollout"], "r-7");
        let v = serde_json::to_value(DeploymentJson::new(&record, false, None))?;
        assert!(v["running"].is_null());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_time_past_the_year_9999_is_shown_not_a_panic() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(u64::MAX),
            format!("{} ms after the Unix epoch", u64::MAX)
        );
    }

    use vigie_wire::tower::{ChangeState, ChangeView, StepStatus, StepView};

    use super::ChangeJson;

    fn view(state: ChangeState) -> ChangeView {
        ChangeView {
            id: "c1".into(),
            host: "web-1".into(),
            seq: 1,
            tenant: "default".into(),
            operator: "admin".into(),
            title: "t".into(),
            state,
            steps: vec![StepView {
                name: "a".into(),
                kind: "run".into(),
                status: StepStatus::UndoFailed,
                result: None,
                undo: None,
            }],
            submitted_ms: 0,
            updated_ms: 1_500,
            waiting: None,
        }
    }

    #[test]
    fn states_are_words_with_a_step_numbered_from_one() -> anyhow::Result<()> {
        let v = serde_json::to_value(ChangeJson::from(&view(ChangeState::Running { step: 0 })))?;
        assert_eq!(v["state"], "running");
        assert_eq!(v["step"], 1);
        assert_eq!(v["final"], false);
        assert_eq!(v["steps"][0]["step"], 1);
        assert_eq!(v["steps"][0]["status"], "undo_failed");
        assert_eq!(v["updated"], "1970-01-01T00:00:01.500Z");
        let v = serde_json::to_value(ChangeJson::from(&view(ChangeState::RolledBack {
            failed_step: Some(2),
            interrupted: false,
            stopped: false,
        })))?;
        assert_eq!(v["state"], "rolled_back");
        assert_eq!(v["step"], 3);
        assert_eq!(v["final"], true);
        Ok(())
    }
}

/// A host's latest metrics (`vigie hosts --metrics --json`), in base units.
#[derive(Debug, Serialize)]
pub struct HostMetricsJson {
    pub host: String,
    /// When the host sampled them (its clock); none without a sample.
    pub at: Option<String>,
    pub age_ms: u64,
    /// Older than three of the host's sampling intervals: not current.
    pub stale: bool,
    pub cpus: Option<u32>,
    pub cpu_busy_seconds: Option<f64>,
    pub cpu_idle_seconds: Option<f64>,
    pub load: Option<[f64; 3]>,
    pub memory_total_bytes: Option<u64>,
    pub memory_available_bytes: Option<u64>,
    pub disk_total_bytes: Option<u64>,
    pub disk_available_bytes: Option<u64>,
    pub uptime_seconds: Option<f64>,
    pub services: Vec<ServiceJson>,
    /// Services beyond the list's bound, not listed.
    pub services_omitted: u32,
    /// Replicas the host's health watch restarted since its agent started.
    pub replica_restarts: u64,
    /// Replicas it restarted too often and left stopped.
    pub replicas_given_up: u32,
}

#[derive(Debug, Serialize)]
pub struct ServiceJson {
    pub name: String,
    pub instance: String,
    pub replica: String,
    pub running: bool,
}

impl From<&vigie_wire::observe::HostMetricsView> for HostMetricsJson {
    fn from(v: &vigie_wire::observe::HostMetricsView) -> Self {
        let s = v.sample.as_ref();
        let secs = |ms: u64| ms as f64 / 1000.0;
        Self {
            host: v.host.clone(),
            at: s.map(|s| rfc3339(s.at_ms)),
            age_ms: v.age_ms,
            stale: v.stale,
            cpus: s.map(|s| s.cpus),
            cpu_busy_seconds: s.map(|s| secs(s.cpu_busy_ms)),
            cpu_idle_seconds: s.map(|s| secs(s.cpu_idle_ms)),
            load: s.map(|s| s.load_centi.map(|l| f64::from(l) / 100.0)),
            memory_total_bytes: s.map(|s| s.memory_total_bytes),
            memory_available_bytes: s.map(|s| s.memory_available_bytes),
            disk_total_bytes: s.map(|s| s.disk_total_bytes),
            disk_available_bytes: s.map(|s| s.disk_available_bytes),
            uptime_seconds: s.map(|s| secs(s.uptime_ms)),
            services: s
                .map(|s| {
                    s.services
                        .iter()
                        .map(|x| ServiceJson {
                            name: x.name.clone(),
                            instance: x.instance.clone(),
                            replica: x.replica.clone(),
                            running: x.running,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            services_omitted: s.map_or(0, |s| s.services_omitted),
            replica_restarts: s.map_or(0, |s| s.replica_restarts),
            replicas_given_up: s.map_or(0, |s| s.replicas_given_up),
        }
    }
}

/// One line of a host's logs (`vigie logs --json`): a step's output (change,
/// step from 1, phase `apply`/`undo`, stream) or a service's (instance,
/// replica).
#[derive(Debug, Serialize)]
pub struct LogLineJson {
    pub at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<String>,
    pub text: String,
}

impl LogLineJson {
    /// A record as the host keeps it: `AT \t A \t B \t PHASE \t STREAM \t text`.
    pub fn parse(record: &str, source: &vigie_wire::observe::LogSource) -> Option<Self> {
        let mut f = record.splitn(6, '\t');
        let at: u64 = f.next()?.parse().ok()?;
        let (a, b, phase, stream, text) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
        let mut l = Self {
            at: rfc3339(at),
            change: None,
            step: None,
            phase: None,
            stream: None,
            service: None,
            instance: None,
            replica: None,
            text: text.to_owned(),
        };
        match source {
            vigie_wire::observe::LogSource::Steps { .. } => {
                l.change = Some(a.to_owned());
                l.step = b.parse::<u32>().ok().map(step_number);
                l.phase = Some(phase.to_owned());
                l.stream = Some(stream.to_owned());
            }
            vigie_wire::observe::LogSource::Service { name } => {
                l.service = Some(name.clone());
                l.instance = Some(a.to_owned());
                l.replica = Some(b.to_owned());
            }
        }
        Some(l)
    }
}
