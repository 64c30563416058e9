//! The transitions of [`Rollout`]: one function per phase's end, each
//! returning what the daemon must do next.

use vigie_wire::change::ChangeSpec;

use super::{Ended, Facts, Finish, Input, Options, Output, Phase, Sent, State};
use crate::compile::{compile_host, Duties};
use crate::inventory::{EnvRecord, Outcome};
use crate::maintenance::{
    compile_enter, compile_leave, compile_probe, compile_upgrade, migration_check, MigrationCheck,
};
use crate::plan::{settle, DeployPlan, HostPlan};
use crate::recovery::{migrations_committed, recovery, Recovery};
use crate::spec::Environment;
use crate::DeployError;

/// One deploy's rollout: its environment, its plan once the facts are
/// in, and its recorded state.
#[derive(Debug, Clone)]
pub struct Rollout {
    pub(super) env: Environment,
    pub(super) plan: Option<DeployPlan>,
    pub(super) state: State,
}

impl Rollout {
    /// A rollout not started yet; `token` is its id.
    pub fn new(env: Environment, token: String, options: Options) -> Rollout {
        Rollout {
            env,
            plan: None,
            state: State {
                token,
                options,
                facts: None,
                phase: Phase::Plan,
                sent: Vec::new(),
                results: Default::default(),
                went: false,
                schema_ahead: false,
                in_maintenance: Vec::new(),
                keys: 0,
            },
        }
    }

    /// A rollout rebuilt from its recorded state: planned again from the
    /// same facts (pure, so the same plan).
    pub fn resume(env: Environment, state: State) -> Result<Rollout, DeployError> {
        let plan = match &state.facts {
            Some(facts) if state.phase != Phase::Plan => Some(super::replan(&env, facts)?),
            _ => None,
        };
        Ok(Rollout { env, plan, state })
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn env(&self) -> &Environment {
        &self.env
    }

    pub fn finished(&self) -> Option<Finish> {
        match self.state.phase {
            Phase::Done(f) => Some(f),
            _ => None,
        }
    }

    /// The changes submitted and not ended: the daemon follows them.
    pub fn open_changes(&self) -> Vec<String> {
        self.state
            .sent
            .iter()
            .filter(|s| s.ended.is_none())
            .filter_map(|s| s.change.clone())
            .collect()
    }

    /// What the current phase still needs, for a rollout new or resumed:
    /// its record first when it is a maintenance deploy (the record says
    /// which hosts may be in maintenance before any is touched), then the
    /// changes not known to be submitted, under their own keys.
    pub fn start(&mut self) -> Vec<Output> {
        match self.state.phase {
            Phase::Plan => vec![Output::ReadFacts],
            Phase::Settle => vec![self.record(true)],
            // The in-progress record may have been cut: written again.
            Phase::Wait(_) => vec![self.record(false)],
            Phase::Done(_) => Vec::new(),
            _ => {
                let mut out = Vec::new();
                if self.state.went {
                    out.push(self.record(false));
                }
                out.extend(self.submits());
                out
            }
        }
    }

    /// Takes `input` into account; returns what to do next.
    pub fn step(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Facts(facts) if self.state.phase == Phase::Plan => self.planned(facts),
            Input::Submitted { key, change } => {
                let Some(sent) = self.state.sent.iter_mut().find(|s| s.key == key) else {
                    return Vec::new();
                };
                if sent.change.is_some() {
                    return Vec::new();
                }
                sent.change = Some(change.clone());
                vec![Output::Say(format!(
                    "{}: change {change} queued",
                    sent.host
                ))]
            }
            Input::Ended { change, ended } => self.ended(&change, ended),
            Input::Failed { change, lines } => {
                super::say_failure(&self.state.sent, &change, &lines)
            }
            Input::SubmitRefused { key, why } => self.refused(&key, &why),
            Input::Recorded { done: true } if self.state.phase == Phase::Settle => self.settled(),
            Input::RecordRefused(why) => {
                let mut out = vec![Output::Say(format!(
                    "the inventory refused this deploy's record: {why}"
                ))];
                out.extend(self.done(Finish::Failed));
                out
            }
            Input::Command(command) => self.command(command),
            Input::Facts(_) | Input::Recorded { .. } | Input::Told { .. } => Vec::new(),
        }
    }

    pub(super) fn plan(&self) -> Option<&DeployPlan> {
        self.plan.as_ref()
    }

    pub(super) fn busy(&self) -> Vec<HostPlan> {
        self.plan()
            .map(|p| p.busy_hosts().cloned().collect())
            .unwrap_or_default()
    }

    pub(super) fn done(&mut self, finish: Finish) -> Vec<Output> {
        self.state.phase = Phase::Done(finish);
        self.state.sent.clear();
        vec![Output::Done(finish)]
    }

    fn planned(&mut self, facts: Facts) -> Vec<Output> {
        let plan = match super::replan(&self.env, &facts) {
            Ok(plan) => plan,
            Err(e) => {
                let mut out = vec![Output::Say(e.to_string())];
                out.extend(self.done(Finish::Failed));
                return out;
            }
        };
        let mut out = summary(&self.env, &plan);
        let stuck = facts
            .previous
            .as_ref()
            .map(EnvRecord::in_maintenance)
            .unwrap_or_default();
        if !stuck.is_empty() && !self.state.options.from_maintenance {
            out.push(Output::Say(stuck_refusal(&self.env, &facts, &stuck)));
            out.extend(self.done(Finish::Refused));
            return out;
        }
        let busy = plan.busy_hosts().count();
        let check = migration_check(&self.env, &plan);
        if let Some(why) = self.canary_refusal(facts.previous.is_none(), check, &stuck) {
            out.push(Output::Say(why));
            out.extend(self.done(Finish::Refused));
            return out;
        }
        self.state.facts = Some(facts);
        self.plan = Some(plan);
        if busy == 0 {
            out.extend(self.settle());
        } else if !stuck.is_empty() {
            out.push(Output::Say(format!(
                "{} in maintenance since an earlier deploy: maintenance deploy, the previous version is never restarted",
                stuck.join(", ")
            )));
            out.extend(self.enter(true));
        } else {
            out.extend(match check {
                MigrationCheck::NotNeeded | MigrationCheck::FirstDeploy => self.wave(0),
                MigrationCheck::Pending => self.enter(false),
                MigrationCheck::Probe => self.probe(),
            });
        }
        out
    }

    /// Opens `phase` with one change per host of `hosts`.
    pub(super) fn open(&mut self, phase: Phase, hosts: &[String]) -> Vec<Output> {
        self.state.phase = phase;
        self.state.sent = hosts
            .iter()
            .map(|host| {
                self.state.keys += 1;
                Sent {
                    host: host.clone(),
                    key: format!("{}-{}", self.state.token, self.state.keys),
                    change: None,
                    ended: None,
                }
            })
            .collect();
        self.submits()
    }

    /// The submissions of the current phase's changes not known to be
    /// submitted (again, after a crash: same key, same change).
    fn submits(&self) -> Vec<Output> {
        self.state
            .sent
            .iter()
            .filter(|s| s.change.is_none())
            .filter_map(|s| {
                self.spec_of(&s.host).map(|spec| Output::Submit {
                    host: s.host.clone(),
                    key: s.key.clone(),
                    spec,
                })
            })
            .collect()
    }

    /// What the current phase sends `host`.
    fn spec_of(&self, host: &str) -> Option<ChangeSpec> {
        let (env, plan) = (&self.env, self.plan()?);
        let busy = self.busy();
        let index = busy.iter().position(|h| h.host == host)?;
        let h = &busy[index];
        Some(match self.state.phase {
            Phase::Probe => compile_probe(env, plan, h)?,
            Phase::Wave(_) => {
                let first = migration_check(env, plan) == MigrationCheck::FirstDeploy;
                compile_host(env, plan, h, Duties::of_host(env, index, first))
            }
            Phase::Enter => compile_enter(env, plan, h),
            Phase::Upgrade(_) => compile_upgrade(env, plan, h, Duties::of_host(env, index, true)),
            Phase::Leave => compile_leave(env, plan, h),
            Phase::Abort => super::canary::compile_abort(env, plan, h),
            Phase::Plan | Phase::Settle | Phase::Wait(_) | Phase::Done(_) => return None,
        })
    }

    /// The waves of the rolling update: the first host alone when it makes
    /// what the others rely on (a new database, the first migrations),
    /// then `parallel` hosts at a time.
    pub(super) fn waves(&self) -> Vec<Vec<String>> {
        let Some(plan) = self.plan() else {
            return Vec::new();
        };
        let busy: Vec<String> = plan.busy_hosts().map(|h| h.host.clone()).collect();
        let first = migration_check(&self.env, plan) == MigrationCheck::FirstDeploy;
        let mut waves = Vec::new();
        let rest = if (first || plan.adds_database()) && busy.len() > 1 {
            waves.push(busy[..1].to_vec());
            &busy[1..]
        } else {
            &busy[..]
        };
        let parallel = self.state.options.parallel.max(1) as usize;
        // The canary's hosts never share a wave with the others.
        let canary = self
            .canary_count(busy.len())
            .saturating_sub(busy.len() - rest.len());
        let (canary, rest) = rest.split_at(canary.min(rest.len()));
        waves.extend(canary.chunks(parallel).map(<[String]>::to_vec));
        waves.extend(rest.chunks(parallel).map(<[String]>::to_vec));
        waves
    }

    pub(super) fn wave(&mut self, index: usize) -> Vec<Output> {
        match self.waves().get(index).cloned() {
            Some(hosts) => self.open(Phase::Wave(index), &hosts),
            None => self.settle(),
        }
    }

    fn probe(&mut self) -> Vec<Output> {
        let first = self.busy().first().map(|h| h.host.clone());
        let Some(first) = first else {
            return self.settle();
        };
        let mut out = vec![Output::Say(format!(
            "asking {first} whether migrations are pending"
        ))];
        let opened = self.open(Phase::Probe, std::slice::from_ref(&first));
        if opened.is_empty() {
            // Nothing to ask with (no migrations service here): none pending.
            return self.wave(0);
        }
        out.extend(opened);
        out
    }

    /// Maintenance on every busy host, recorded before any is touched.
    fn enter(&mut self, schema_ahead: bool) -> Vec<Output> {
        let hosts: Vec<String> = self.busy().iter().map(|h| h.host.clone()).collect();
        self.state.went = true;
        self.state.schema_ahead = schema_ahead;
        self.state.in_maintenance = hosts.clone();
        let mut out = vec![
            Output::Say(format!("maintenance: entering on {} host(s)", hosts.len())),
            self.record(false),
        ];
        out.extend(self.open(Phase::Enter, &hosts));
        out
    }

    fn upgrade(&mut self, index: usize) -> Vec<Output> {
        match self.busy().get(index).map(|h| h.host.clone()) {
            Some(host) => self.open(Phase::Upgrade(index), &[host]),
            None => self.settle(),
        }
    }

    fn leave_maintenance(&mut self, host: &str) {
        self.state.in_maintenance.retain(|h| h != host);
    }

    fn ended(&mut self, change: &str, ended: Ended) -> Vec<Output> {
        let Some(sent) = self
            .state
            .sent
            .iter_mut()
            .find(|s| s.change.as_deref() == Some(change) && s.ended.is_none())
        else {
            return Vec::new();
        };
        sent.ended = Some(ended);
        let line = format!(
            "{}: change {change} {}",
            sent.host,
            if ended.ok { "succeeded" } else { "rolled back" }
        );
        let mut out = vec![Output::Say(line)];
        if self.state.sent.iter().all(|s| s.ended.is_some()) {
            out.extend(self.phase_ended());
        }
        out
    }

    fn refused(&mut self, key: &str, why: &str) -> Vec<Output> {
        let Some((refused, said)) = super::refuse(&mut self.state.sent, key, why) else {
            return Vec::new();
        };
        let mut out = vec![said];
        let ended = Ended {
            ok: false,
            migrate: crate::MigrateRun::NotRun,
            probe: None,
        };
        out.extend(self.ended(&refused, ended));
        out
    }

    /// Every change of the phase ended: `(host, change, how)`.
    fn outcomes(&self) -> Vec<(String, String, Ended)> {
        self.state
            .sent
            .iter()
            .filter_map(|s| Some((s.host.clone(), s.change.clone()?, s.ended?)))
            .collect()
    }

    fn phase_ended(&mut self) -> Vec<Output> {
        let outcomes = self.outcomes();
        match self.state.phase {
            Phase::Probe => self.probed(&outcomes),
            Phase::Wave(i) => self.waved(i, &outcomes),
            Phase::Enter => self.entered(&outcomes),
            Phase::Upgrade(i) => self.upgraded(i, &outcomes),
            Phase::Leave => self.left(&outcomes),
            Phase::Abort => self.aborted(&outcomes),
            Phase::Plan | Phase::Settle | Phase::Wait(_) | Phase::Done(_) => Vec::new(),
        }
    }

    fn probed(&mut self, outcomes: &[(String, String, Ended)]) -> Vec<Output> {
        let Some((host, change, ended)) = outcomes.first().cloned() else {
            return self.settle();
        };
        match (ended.ok, ended.probe) {
            (true, Some(true)) if self.state.options.canary > 0 => {
                let mut out = vec![Output::Say(super::canary::MAINTENANCE_REFUSAL.into())];
                out.extend(self.done(Finish::Refused));
                out
            }
            (true, Some(true)) => {
                let mut out = vec![Output::Say("migrations: pending".into())];
                out.extend(self.enter(false));
                out
            }
            (true, Some(false)) => {
                let mut out = vec![Output::Say("migrations: none pending".into())];
                out.extend(self.wave(0));
                out
            }
            _ => {
                self.state
                    .results
                    .insert(host.clone(), (change.clone(), false));
                let mut out = vec![Output::Say(format!(
                    "{host}: the migrations check failed (change {change}): nothing was deployed"
                ))];
                out.extend(self.settle());
                out
            }
        }
    }

    fn waved(&mut self, index: usize, outcomes: &[(String, String, Ended)]) -> Vec<Output> {
        for (host, change, ended) in outcomes {
            self.state
                .results
                .insert(host.clone(), (change.clone(), ended.ok));
        }
        if outcomes.iter().any(|(_, _, e)| !e.ok) {
            let mut out = vec![Output::Say(
                "a host rolled back: the deploy stops here".into(),
            )];
            out.extend(self.settle());
            return out;
        }
        if self.canary_ends_at(index) {
            return self.wait(index + 1);
        }
        self.wave(index + 1)
    }

    fn entered(&mut self, outcomes: &[(String, String, Ended)]) -> Vec<Output> {
        let mut out = Vec::new();
        let mut entered = Vec::new();
        for (host, change, ended) in outcomes {
            if ended.ok {
                entered.push(host.clone());
                continue;
            }
            out.push(Output::Say(format!(
                "{host}: could not enter maintenance (change {change})"
            )));
            self.state
                .results
                .insert(host.clone(), (change.clone(), false));
            // Its enter rolled back: it serves what it served, unless an
            // earlier deploy had left it in maintenance already.
            if !self.state.schema_ahead {
                self.leave_maintenance(host);
            }
        }
        out.push(self.record(false));
        if entered.len() < outcomes.len() {
            let ahead = self.state.schema_ahead;
            out.extend(self.recover(entered, ahead));
        } else {
            out.extend(self.upgrade(0));
        }
        out
    }

    fn upgraded(&mut self, index: usize, outcomes: &[(String, String, Ended)]) -> Vec<Output> {
        let Some((host, change, ended)) = outcomes.first().cloned() else {
            return self.settle();
        };
        self.state
            .results
            .insert(host.clone(), (change.clone(), ended.ok));
        if ended.ok {
            self.leave_maintenance(&host);
            let mut out = vec![self.record(false)];
            out.extend(self.upgrade(index + 1));
            return out;
        }
        let mut out = vec![Output::Say(format!(
            "{host}: the new version rolled back (change {change}): the deploy stops here"
        ))];
        // Hosts already upgraded keep the new version; the others, this
        // one too, go back only if the migrations cannot have committed.
        let committed = migrations_committed(index, ended.migrate, self.state.schema_ahead);
        let waiting: Vec<String> = self.busy()[index..]
            .iter()
            .map(|h| h.host.clone())
            .collect();
        out.extend(self.recover(waiting, committed));
        out
    }

    fn recover(&mut self, waiting: Vec<String>, committed: bool) -> Vec<Output> {
        match recovery(waiting, committed) {
            Recovery::LeaveWithPrevious(hosts) if hosts.is_empty() => self.settle(),
            Recovery::LeaveWithPrevious(hosts) => {
                let mut out = vec![Output::Say(format!(
                    "back to the previous version on {} host(s)",
                    hosts.len()
                ))];
                out.extend(self.open(Phase::Leave, &hosts));
                out
            }
            Recovery::StayInMaintenance(hosts) => {
                let mut out = vec![Output::Say(format!(
                    "migrations of {} may have been applied: {} stay in maintenance (503 with Retry-After), \
                     old code stopped, since the previous version must not run on the new schema; \
                     fix the new version and deploy it with --from-maintenance",
                    self.env.key,
                    hosts.join(", ")
                ))];
                out.extend(self.settle());
                out
            }
        }
    }

    fn left(&mut self, outcomes: &[(String, String, Ended)]) -> Vec<Output> {
        let mut out = Vec::new();
        for (host, change, ended) in outcomes {
            if ended.ok {
                self.leave_maintenance(host);
            } else {
                out.push(Output::Say(format!(
                    "{host}: could not leave maintenance (change {change}): the host still answers 503"
                )));
            }
            self.state
                .results
                .entry(host.clone())
                .or_insert((change.clone(), false));
        }
        out.extend(self.settle());
        out
    }

    pub(super) fn settle(&mut self) -> Vec<Output> {
        self.state.phase = Phase::Settle;
        self.state.sent.clear();
        vec![self.record(true)]
    }

    fn settled(&mut self) -> Vec<Output> {
        let finish = match self.record_of(true).history.last().map(|d| d.outcome) {
            Some(Outcome::Succeeded) => Finish::Succeeded,
            Some(Outcome::InMaintenance) => Finish::InMaintenance,
            _ => Finish::RolledBack,
        };
        let number = self.plan().map_or(0, |p| p.number);
        let mut out = vec![Output::Say(format!(
            "deploy {} #{number}: {}",
            self.env.key,
            finish.word()
        ))];
        out.extend(self.done(finish));
        out
    }

    /// The environment's record as this deploy leaves it so far.
    fn record_of(&self, done: bool) -> EnvRecord {
        let previous = self.state.facts.as_ref().and_then(|f| f.previous.as_ref());
        let Some(plan) = self.plan() else {
            return previous
                .cloned()
                .unwrap_or_else(|| EnvRecord::new(self.env.key.clone()));
        };
        let mut record = settle(previous, plan, &self.env, &self.state.results);
        for host in &self.state.in_maintenance {
            record.hosts.entry(host.clone()).or_default().maintenance = true;
        }
        if let Some(last) = record.history.last_mut() {
            last.maintenance = self.state.went;
            last.run = Some(self.state.token.clone());
            last.at_ms = Some(self.state.options.started_ms);
            last.operator = Some(self.state.options.operator.clone());
            last.version = self.state.options.version.clone();
            if !done {
                last.outcome = Outcome::InProgress;
            } else if !self.state.in_maintenance.is_empty() {
                last.outcome = Outcome::InMaintenance;
            }
        }
        record
    }

    pub(super) fn record(&self, done: bool) -> Output {
        let previous = self.state.facts.as_ref().and_then(|f| f.previous.as_ref());
        Output::Record {
            record: self.record_of(done),
            expected: previous.map_or(0, |p| u32::try_from(p.history.len()).unwrap_or(u32::MAX)),
            done,
        }
    }
}

/// The lines that say what a deploy will do.
fn summary(env: &Environment, plan: &DeployPlan) -> Vec<Output> {
    let mut out = vec![Output::Say(format!("deploy {} #{}", env.key, plan.number))];
    if plan.bumps.is_empty() {
        out.push(Output::Say("  no component changed".into()));
    }
    for bump in &plan.bumps {
        out.push(Output::Say(match bump.from {
            Some(from) => format!("  {}: instance {from} → {}", bump.component, bump.to),
            None => format!("  {}: instance {} (new)", bump.component, bump.to),
        }));
    }
    for host in &plan.hosts {
        let what: Vec<String> = host
            .services
            .iter()
            .map(|s| format!("{} #{}", s.name, s.instance))
            .collect();
        out.push(Output::Say(if what.is_empty() && !host.maintenance {
            format!("  {}: up to date", host.host)
        } else {
            format!("  {}: {}", host.host, what.join(", "))
        }));
    }
    out
}

/// Why a deploy that finds hosts left in maintenance is refused.
fn stuck_refusal(env: &Environment, facts: &Facts, stuck: &[String]) -> String {
    let last = facts.previous.as_ref().and_then(|p| p.history.last());
    format!(
        "{} of {} in maintenance (503), left there by deploy #{}{}: the migrations of an earlier deploy \
         may have been applied, so the previous version must not run again; fix the new version and \
         deploy it with --from-maintenance",
        stuck.join(", "),
        env.key,
        last.map_or(0, |d| d.number),
        if last.is_some_and(|d| d.outcome == Outcome::InProgress) {
            " (still in progress, or cut short)"
        } else {
            ""
        }
    )
}
