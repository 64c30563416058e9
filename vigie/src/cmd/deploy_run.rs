//! A deploy as it runs (`vigie deploy`, after planning): the tower, the
//! plan, the journal of what happened so far, and the ways through — a
//! rolling update, or a maintenance deploy with its recovery — each a
//! method of [`Run`], so what every step shares is held in one place.

use std::collections::BTreeMap;

use anyhow::{bail, Context};

use vigie_client::calls;
use vigie_deployer::{
    compile_enter, compile_host, compile_leave, compile_probe, compile_upgrade,
    migrations_committed, probe_answer, recovery, settle, DeployPlan, Duties, EnvRecord,
    Environment, HostPlan, MigrateRun, MigrationCheck, Outcome, Recovery, MIGRATE_STEP,
};
use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{ChangeState, ChangeView, StepStatus};

use super::conn::Tower;
use super::out::{say, Format};

/// Each host's change and whether it succeeded.
pub(super) type Results = BTreeMap<String, (String, bool)>;

/// What a maintenance deploy did so far, kept so that a deploy cut by an
/// error (the tower unreachable, a timeout) still records which hosts may
/// be in maintenance.
#[derive(Debug, Default)]
pub(super) struct MaintenanceRun {
    /// Whether the deploy went through maintenance.
    went: bool,
    /// Hosts that may answer the maintenance page: every host from the
    /// moment its enter change is submitted until it is upgraded, went
    /// back, or its enter rolled back.
    pub(super) in_maintenance: Vec<String>,
}

impl MaintenanceRun {
    fn out(&mut self, host: &str) {
        self.in_maintenance.retain(|h| h != host);
    }
}

/// One deploy under way.
pub(super) struct Run<'a> {
    client: &'a mut Tower,
    format: Format,
    env: &'a Environment,
    plan: &'a DeployPlan,
    /// The environment's record before this deploy.
    previous: Option<&'a EnvRecord>,
    /// Tells this run's in-progress entry from another deploy's.
    token: String,
    results: Results,
    pub(super) maintenance: MaintenanceRun,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        client: &'a mut Tower,
        format: Format,
        env: &'a Environment,
        plan: &'a DeployPlan,
        previous: Option<&'a EnvRecord>,
    ) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        Self {
            client,
            format,
            env,
            plan,
            previous,
            token: format!("{}-{nanos}", std::process::id()),
            results: Results::new(),
            maintenance: MaintenanceRun::default(),
        }
    }

    /// Writes the environment's record for this deploy: while it runs an
    /// `InProgress` entry (its own run may rewrite it), then the outcome.
    pub(super) fn write(&mut self, done: bool) -> anyhow::Result<()> {
        let mut record = settle(self.previous, self.plan, self.env, &self.results);
        let run = &self.maintenance;
        for host in &run.in_maintenance {
            record.hosts.entry(host.clone()).or_default().maintenance = true;
        }
        if let Some(last) = record.history.last_mut() {
            last.maintenance = run.went;
            last.run = Some(self.token.clone());
            if !done {
                last.outcome = Outcome::InProgress;
            } else if !run.in_maintenance.is_empty() {
                last.outcome = Outcome::InMaintenance;
            }
        }
        let expected = self.previous.map_or(0, |p| p.history.len());
        self.client
            .ask(calls::DeployRecord {
                app: self.env.key.app.to_string(),
                environment: self.env.key.environment.to_string(),
                expected: u32::try_from(expected).unwrap_or(u32::MAX),
                record: record.to_json()?,
            })
            .context("recording the deploy in the inventory")?;
        Ok(())
    }

    /// The deploy proper: asks whether migrations are pending when needed,
    /// then a rolling update or a maintenance deploy. Returns whether it
    /// failed.
    pub(super) fn steps(
        &mut self,
        busy: &[&'a HostPlan],
        check: MigrationCheck,
        parallel: u32,
    ) -> anyhow::Result<bool> {
        let pending = match check {
            MigrationCheck::NotNeeded | MigrationCheck::FirstDeploy => Some(false),
            MigrationCheck::Pending => Some(true),
            MigrationCheck::Probe => match busy.first() {
                Some(first) => self.probe(first)?,
                None => Some(false),
            },
        };
        Ok(match pending {
            // The probe itself failed: nothing was touched.
            None => true,
            Some(true) => self.with_maintenance(busy, false)?,
            Some(false) => self.rolling(busy, check == MigrationCheck::FirstDeploy, parallel)?,
        })
    }

    /// Submits one change per host and follows them to their end.
    fn submit_all(&mut self, specs: Vec<(String, ChangeSpec)>) -> anyhow::Result<Vec<ChangeView>> {
        let mut ids = Vec::new();
        for (host, spec) in specs {
            let views = self.client.ask(calls::Submit { spec, target: host })?;
            for v in views {
                say!("{}: change {} queued", v.host, v.id);
                ids.push(v.id);
            }
        }
        super::tower::follow(self.format, self.client, &ids, None)
    }

    /// Asks the first host whether migrations are pending: `None` when the
    /// probe itself failed (recorded in the results).
    fn probe(&mut self, host: &HostPlan) -> anyhow::Result<Option<bool>> {
        let Some(spec) = compile_probe(self.env, self.plan, host) else {
            return Ok(Some(false));
        };
        say!("asking {} whether migrations are pending", host.host);
        let done = self.submit_all(vec![(host.host.clone(), spec)])?;
        let Some(view) = done.first() else {
            bail!("the migrations check was not queued");
        };
        let answer = view
            .steps
            .last()
            .and_then(|s| s.result.as_ref())
            .and_then(|r| probe_answer(&r.stdout_tail));
        match (view.state == ChangeState::Succeeded, answer) {
            (true, Some(pending)) => {
                say!(
                    "migrations: {}",
                    if pending { "pending" } else { "none pending" }
                );
                Ok(Some(pending))
            }
            _ => {
                say!(
                    "{}: the migrations check failed (change {}): nothing was deployed",
                    host.host,
                    view.id
                );
                self.results
                    .insert(host.host.clone(), (view.id.clone(), false));
                Ok(None)
            }
        }
    }

    /// The rolling update, `parallel` hosts at a time; the first host goes
    /// alone when it makes what the others rely on (a new database, the
    /// first migrations). Returns whether a host rolled back.
    fn rolling(
        &mut self,
        busy: &[&HostPlan],
        first_deploy: bool,
        parallel: u32,
    ) -> anyhow::Result<bool> {
        let mut waves: Vec<&[&HostPlan]> = Vec::new();
        let rest = if (first_deploy || self.plan.adds_database()) && busy.len() > 1 {
            waves.push(&busy[..1]);
            &busy[1..]
        } else {
            busy
        };
        waves.extend(rest.chunks(parallel as usize));
        for wave in waves {
            let specs = wave
                .iter()
                .map(|host| {
                    let index = busy.iter().position(|h| h.host == host.host).unwrap_or(0);
                    let duties = Duties::of_host(self.env, index, first_deploy);
                    (
                        host.host.clone(),
                        compile_host(self.env, self.plan, host, duties),
                    )
                })
                .collect();
            let mut failed = false;
            for v in self.submit_all(specs)? {
                let ok = v.state == ChangeState::Succeeded;
                failed |= !ok;
                self.results.insert(v.host.clone(), (v.id.clone(), ok));
            }
            if failed {
                say!("a host rolled back: the deploy stops here");
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Brings hosts that entered maintenance back to the previous version;
    /// returns those that left it.
    fn leave(&mut self, hosts: &[&HostPlan]) -> anyhow::Result<Vec<String>> {
        if hosts.is_empty() {
            return Ok(Vec::new());
        }
        say!("back to the previous version on {} host(s)", hosts.len());
        let specs = hosts
            .iter()
            .map(|h| (h.host.clone(), compile_leave(self.env, self.plan, h)))
            .collect();
        let mut left = Vec::new();
        for v in self.submit_all(specs)? {
            if v.state == ChangeState::Succeeded {
                left.push(v.host.clone());
            } else {
                say!(
                    "{}: could not leave maintenance (change {}): the host still answers 503",
                    v.host,
                    v.id
                );
            }
            self.results
                .entry(v.host.clone())
                .or_insert((v.id.clone(), false));
        }
        Ok(left)
    }

    /// What to do with `waiting` (in maintenance, not upgraded) once a
    /// change failed: the previous version back, or maintenance kept.
    fn recover(&mut self, waiting: &[&HostPlan], committed: bool) -> anyhow::Result<()> {
        let names = waiting.iter().map(|h| h.host.clone()).collect();
        match recovery(names, committed) {
            Recovery::LeaveWithPrevious(_) => {
                for host in self.leave(waiting)? {
                    self.maintenance.out(&host);
                }
            }
            Recovery::StayInMaintenance(hosts) => stay_in_maintenance(self.env, &hosts),
        }
        Ok(())
    }

    /// A deploy with pending migrations: every host enters maintenance, the
    /// first upgrades and runs the migrations, then the others upgrade. A
    /// failure brings the hosts still in maintenance back to the previous
    /// version when the migrations did not commit, and leaves them in
    /// maintenance when they did (`schema_ahead`: an earlier deploy already
    /// migrated). Returns whether something failed.
    pub(super) fn with_maintenance(
        &mut self,
        busy: &[&'a HostPlan],
        schema_ahead: bool,
    ) -> anyhow::Result<bool> {
        let entered = self.enter(busy, schema_ahead)?;
        if entered.len() < busy.len() {
            self.recover(&entered, schema_ahead)?;
            return Ok(true);
        }
        self.upgrade(busy, schema_ahead)
    }

    /// Every busy host into maintenance; returns those that entered.
    fn enter(
        &mut self,
        busy: &[&'a HostPlan],
        schema_ahead: bool,
    ) -> anyhow::Result<Vec<&'a HostPlan>> {
        say!("maintenance: entering on {} host(s)", busy.len());
        let specs = busy
            .iter()
            .map(|h| (h.host.clone(), compile_enter(self.env, self.plan, h)))
            .collect();
        self.maintenance.went = true;
        self.maintenance.in_maintenance = busy.iter().map(|h| h.host.clone()).collect();
        // Recorded before any host is touched (this also takes the
        // environment: a deploy planned meanwhile is refused), then after
        // each phase, so a deploy cut here leaves the truth behind.
        if let Err(e) = self.write(false) {
            // Nothing was touched.
            self.maintenance = MaintenanceRun::default();
            return Err(e);
        }
        let mut entered = Vec::new();
        for v in self.submit_all(specs)? {
            if v.state == ChangeState::Succeeded {
                entered.extend(busy.iter().copied().find(|h| h.host == v.host));
            } else {
                say!("{}: could not enter maintenance (change {})", v.host, v.id);
                self.results.insert(v.host.clone(), (v.id.clone(), false));
                // Its enter rolled back: it serves what it served, unless
                // an earlier deploy had left it in maintenance already.
                if !schema_ahead {
                    self.maintenance.out(&v.host);
                }
            }
        }
        self.write(false)?;
        Ok(entered)
    }

    /// The hosts in maintenance upgraded one by one, the first running the
    /// migrations; returns whether one rolled back.
    fn upgrade(&mut self, busy: &[&HostPlan], schema_ahead: bool) -> anyhow::Result<bool> {
        for (index, host) in busy.iter().enumerate() {
            let duties = Duties::of_host(self.env, index, true);
            let spec = compile_upgrade(self.env, self.plan, host, duties);
            let done = self.submit_all(vec![(host.host.clone(), spec)])?;
            let Some(v) = done.first() else {
                bail!("the upgrade of {} was not queued", host.host);
            };
            let ok = v.state == ChangeState::Succeeded;
            self.results.insert(v.host.clone(), (v.id.clone(), ok));
            if ok {
                self.maintenance.out(&v.host);
                self.write(false)?;
                continue;
            }
            say!(
                "{}: the new version rolled back (change {}): the deploy stops here",
                v.host,
                v.id
            );
            // Hosts already upgraded keep the new version; the others,
            // this one too, go back only if the migrations did not commit.
            let committed = migrations_committed(index, migrate_run(v), schema_ahead);
            self.recover(&busy[index..], committed)?;
            return Ok(true);
        }
        Ok(false)
    }
}

/// How the migrations step of `view` went (`recovery`).
fn migrate_run(view: &ChangeView) -> MigrateRun {
    let Some(step) = view.steps.iter().find(|s| s.name == MIGRATE_STEP) else {
        return MigrateRun::NotRun;
    };
    match (&step.status, &step.result) {
        (StepStatus::Pending | StepStatus::Skipped, _) | (_, None) => MigrateRun::NotRun,
        (_, Some(r)) if r.ok => MigrateRun::Succeeded,
        (_, Some(r)) if r.exit_code.is_some() => MigrateRun::Exited,
        _ => MigrateRun::Unknown,
    }
}

/// Hosts whose upgrade failed or never ran once the migrations may have
/// committed: the previous version must not run on the new schema, so
/// they stay in maintenance; the operator is told so and how out.
fn stay_in_maintenance(env: &Environment, hosts: &[String]) {
    say!(
        "migrations of {} were applied: {} stay in maintenance (503 with Retry-After), \
         old code stopped, since the previous version must not run on the new schema",
        env.key,
        hosts.join(", ")
    );
    say!(
        "to leave maintenance, fix the new version and deploy it with `vigie deploy ENV.yml --from-maintenance`"
    );
}
