//! `vigie deploy ENV.yml [--plan] [--parallel N]` and `vigie deployments
//! list|show`: the deployer's operator side. A deploy reads the
//! environment, the tenant's hosts and the deployer's inventory (through
//! the referee), plans it (`vigie_deployer::plan`, pure), submits one
//! change request per host — `--parallel` hosts at a time, one by default —
//! follows them, stops at the first host that rolls back, and records the
//! outcome in the inventory. A maintenance deploy is recorded in progress
//! before it touches a host and after each phase; hosts it leaves in
//! maintenance (migrations committed) block the next deploy until
//! `--from-maintenance`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use std::collections::BTreeMap;

use vigie_deployer::{
    compile_enter, compile_host, compile_leave, compile_probe, compile_upgrade, load_environment,
    migration_check, migrations_committed, plan, probe_answer, recovery, settle, DeployPlan,
    Duties, EnvRecord, Environment, HostPlan, MigrateRun, MigrationCheck, Outcome, Recovery,
    Target, MIGRATE_STEP,
};
use vigie_wire::change::Action;
use vigie_wire::change::ChangeSpec;
use vigie_wire::deploy::{DeployAnswer, DeployCall};
use vigie_wire::tower::{ApiAnswer, ApiCall, ChangeState, ChangeView, StepStatus};

use super::conn::{Conn, Tower};
use super::escape::field;
use super::out::{esay, say, Format};
use crate::runtime::EXIT_CONFIG;

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The environment (environment.yml).
    file: PathBuf,
    /// Print what would change (components bumped, steps per host) and stop.
    #[arg(long)]
    plan: bool,
    /// Hosts updated at once (each host rolls its replicas one at a time).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    parallel: u32,
    /// Deploy although an earlier deploy left hosts in maintenance (its
    /// migrations applied): this deploy goes through maintenance and never
    /// restarts the previous version.
    #[arg(long)]
    from_maintenance: bool,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, clap::Args)]
pub struct DeploymentsArgs {
    #[command(subcommand)]
    what: Option<DeploymentsCmd>,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, clap::Subcommand)]
enum DeploymentsCmd {
    /// Every environment deployed in the tenant (the default), a page at
    /// a time.
    List {
        #[command(flatten)]
        page: super::page::PageArgs,
    },
    /// One environment: instance numbers, hosts, history.
    Show {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
    },
}

fn inventory(client: &mut Tower) -> anyhow::Result<Vec<EnvRecord>> {
    records(client.call(ApiCall::Deploy(DeployCall::List))?)
}

fn records(answer: ApiAnswer) -> anyhow::Result<Vec<EnvRecord>> {
    match answer {
        ApiAnswer::Deploy(DeployAnswer::Deployments(all)) => all
            .iter()
            .map(|d| {
                EnvRecord::from_json(&d.record)
                    .with_context(|| format!("the record of {}/{}", d.app, d.environment))
            })
            .collect(),
        other => bail!("unexpected answer: {other:?}"),
    }
}

fn targets(client: &mut Tower, env: &Environment) -> anyhow::Result<Vec<Target>> {
    let selector = vigie_changes::Selector::parse(&env.hosts)?;
    let ApiAnswer::Hosts(mut hosts) = client.call(ApiCall::Hosts)? else {
        bail!("unexpected answer to hosts");
    };
    hosts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(hosts
        .iter()
        .filter(|h| selector.matches(&h.id, &h.labels))
        .map(|h| Target::from_labels(&h.id, &h.labels))
        .collect::<Result<_, _>>()?)
}

fn print_plan(env: &Environment, plan: &DeployPlan, steps: bool) {
    say!("deploy {} #{}", env.key, plan.number);
    let first = plan.busy_hosts().next().map_or("-", |h| h.host.as_str());
    match migration_check(env, plan) {
        MigrationCheck::NotNeeded => {}
        MigrationCheck::FirstDeploy => say!("  migrations: run on {first} before anything starts"),
        MigrationCheck::Probe => say!(
            "  migrations: {first} is asked whether any are pending; if so, maintenance on every host and migrations on {first}"
        ),
        MigrationCheck::Pending => say!(
            "  migrations: pending (a new database): maintenance on every host and migrations on {first}"
        ),
    }
    if plan.bumps.is_empty() {
        say!("  no component changed");
    }
    for bump in &plan.bumps {
        match bump.from {
            Some(from) => say!("  {}: instance {from} → {}", bump.component, bump.to),
            None => say!("  {}: instance {} (new)", bump.component, bump.to),
        }
    }
    for host in &plan.hosts {
        if host.services.is_empty() && !host.maintenance {
            say!(
                "  {}: up to date (proxy {}:{})",
                host.host,
                host.address,
                host.proxy_port
            );
            continue;
        }
        say!(
            "  {}: proxy {}:{}{}",
            host.host,
            host.address,
            host.proxy_port,
            if host.maintenance {
                ", in maintenance: its replicas start again"
            } else {
                ""
            }
        );
        for s in &host.services {
            let was = s
                .previous
                .as_ref()
                .map_or("new".to_string(), |p| format!("replaces #{}", p.instance));
            say!(
                "    {} #{} ({}), {} replica(s), ports {:?}, {was}",
                s.name,
                s.instance,
                s.spec.revision,
                s.spec.replicas,
                s.ports
            );
        }
        if steps {
            let index = plan
                .busy_hosts()
                .position(|h| h.host == host.host)
                .unwrap_or(0);
            let first_deploy = migration_check(env, plan) == MigrationCheck::FirstDeploy;
            let duties = Duties::of_host(env, index, first_deploy);
            let check = migration_check(env, plan);
            let spec = if matches!(check, MigrationCheck::Probe | MigrationCheck::Pending) {
                // What a maintenance deploy sends this host (when pending).
                let mut upgrade = compile_enter(env, plan, host);
                upgrade.steps.extend(
                    compile_upgrade(env, plan, host, Duties::of_host(env, index, true)).steps,
                );
                if check == MigrationCheck::Probe {
                    say!("      if migrations are pending (else a rolling update):");
                }
                upgrade
            } else {
                compile_host(env, plan, host, duties)
            };
            for (i, step) in spec.steps.iter().enumerate() {
                let kind = match &step.action {
                    Action::Run { .. } => "run",
                    Action::File { .. } => "file",
                    Action::Remove { .. } => "remove",
                    Action::Check { .. } => "check",
                };
                say!("      {:>3}. {kind:<6} {}", i + 1, step.name);
            }
        }
    }
}

pub fn deploy(a: DeployArgs, format: Format) -> anyhow::Result<ExitCode> {
    let env = match load_environment(&a.file) {
        Ok(env) => env,
        Err(e) => {
            esay!("vigie deploy: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let mut client = a.conn.client()?;
    let targets = targets(&mut client, &env)?;
    let records = inventory(&mut client)?;
    let previous = records.iter().find(|r| r.key == env.key);
    let others: Vec<EnvRecord> = records
        .iter()
        .filter(|r| r.key != env.key)
        .cloned()
        .collect();
    let plan = match plan(&env, previous, &targets, &others) {
        Ok(plan) => plan,
        Err(e) => {
            esay!("vigie deploy: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    print_plan(&env, &plan, a.plan);
    let stuck = previous.map(EnvRecord::in_maintenance).unwrap_or_default();
    if !stuck.is_empty() {
        let hint = "the migrations of an earlier deploy may have been applied, so the previous version must not run again; fix the new version and deploy it with --from-maintenance";
        if a.plan {
            say!("  in maintenance: {} ({hint})", stuck.join(", "));
        } else if !a.from_maintenance {
            esay!(
                "vigie deploy: {} of {} in maintenance (503), left there by deploy #{}{}: {hint}",
                stuck.join(", "),
                env.key,
                previous
                    .and_then(|p| p.history.last())
                    .map_or(0, |d| d.number),
                if previous
                    .and_then(|p| p.history.last())
                    .is_some_and(|d| d.outcome == Outcome::InProgress)
                {
                    " (still in progress, or cut short)"
                } else {
                    ""
                }
            );
            return Ok(ExitCode::FAILURE);
        }
    }
    if a.plan {
        return Ok(ExitCode::SUCCESS);
    }

    let busy: Vec<&HostPlan> = plan.busy_hosts().collect();
    let check = migration_check(&env, &plan);
    let mut results = BTreeMap::new();
    let mut run = MaintenanceRun::default();
    let journal = Journal {
        previous,
        env: &env,
        plan: &plan,
        token: format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ),
    };
    // Forced by hosts an earlier deploy left in maintenance: the schema
    // may be ahead of their code, so they only ever get a new version.
    let maintenance = !stuck.is_empty() && !busy.is_empty();
    let outcome = if maintenance {
        say!(
            "{} in maintenance since an earlier deploy: maintenance deploy, the previous version is never restarted",
            stuck.join(", ")
        );
        with_maintenance(
            &mut client,
            format,
            &env,
            &plan,
            &busy,
            true,
            &journal,
            &mut results,
            &mut run,
        )
    } else {
        deploy_steps(
            &mut client,
            format,
            &env,
            &plan,
            &busy,
            check,
            a.parallel,
            &journal,
            &mut results,
            &mut run,
        )
    };
    // Recorded whatever happened, a cut deploy too: the next deploy plans
    // from what the hosts run and sees the hosts left in maintenance.
    let failed = outcome.as_ref().map_or(true, |f| *f);
    let recorded = journal.write(&mut client, &results, &run, true);
    if let Err(e) = outcome {
        if !run.in_maintenance.is_empty() {
            esay!(
                "vigie deploy: cut short; may be in maintenance: {}",
                run.in_maintenance.join(", ")
            );
        }
        return Err(match recorded {
            Ok(_) => e,
            Err(r) => e.context(format!("and the deploy could not be recorded: {r:#}")),
        });
    }
    recorded?;
    say!(
        "deploy {} #{}: {}",
        env.key,
        plan.number,
        match (failed, run.in_maintenance.is_empty()) {
            (false, _) => "succeeded",
            (true, true) => "rolled back",
            (true, false) => "failed, hosts left in maintenance",
        }
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The deploy proper: asks whether migrations are pending when needed,
/// then a rolling update or a maintenance deploy. Returns whether it
/// failed.
#[allow(clippy::too_many_arguments)]
fn deploy_steps(
    client: &mut Tower,
    format: Format,
    env: &Environment,
    plan: &DeployPlan,
    busy: &[&HostPlan],
    check: MigrationCheck,
    parallel: u32,
    journal: &Journal,
    results: &mut Results,
    run: &mut MaintenanceRun,
) -> anyhow::Result<bool> {
    let pending = match check {
        MigrationCheck::NotNeeded | MigrationCheck::FirstDeploy => Some(false),
        MigrationCheck::Pending => Some(true),
        MigrationCheck::Probe => match busy.first() {
            Some(first) => probe(client, format, env, plan, first, results)?,
            None => Some(false),
        },
    };
    Ok(match pending {
        // The probe itself failed: nothing was touched.
        None => true,
        Some(true) => with_maintenance(
            client, format, env, plan, busy, false, journal, results, run,
        )?,
        Some(false) => rolling(
            client,
            format,
            env,
            plan,
            busy,
            check == MigrationCheck::FirstDeploy,
            parallel,
            results,
        )?,
    })
}

/// Submits one change per host and follows them to their end.
fn submit_all(
    client: &mut Tower,
    format: Format,
    specs: Vec<(String, ChangeSpec)>,
) -> anyhow::Result<Vec<ChangeView>> {
    let mut ids = Vec::new();
    for (host, spec) in specs {
        let views = client.changes(ApiCall::Submit { spec, target: host })?;
        for v in views {
            say!("{}: change {} queued", v.host, v.id);
            ids.push(v.id);
        }
    }
    super::tower::follow(format, client, &ids, None)
}

type Results = BTreeMap<String, (String, bool)>;

/// Asks the first host whether migrations are pending: `None` when the
/// probe itself failed (recorded in `results`).
fn probe(
    client: &mut Tower,
    format: Format,
    env: &Environment,
    plan: &DeployPlan,
    host: &HostPlan,
    results: &mut Results,
) -> anyhow::Result<Option<bool>> {
    let Some(spec) = compile_probe(env, plan, host) else {
        return Ok(Some(false));
    };
    say!("asking {} whether migrations are pending", host.host);
    let done = submit_all(client, format, vec![(host.host.clone(), spec)])?;
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
            results.insert(host.host.clone(), (view.id.clone(), false));
            Ok(None)
        }
    }
}

/// The rolling update, `parallel` hosts at a time; the first host goes
/// alone when it makes what the others rely on (a new database, the first
/// migrations). Returns whether a host rolled back.
#[allow(clippy::too_many_arguments)]
fn rolling(
    client: &mut Tower,
    format: Format,
    env: &Environment,
    plan: &DeployPlan,
    busy: &[&HostPlan],
    first_deploy: bool,
    parallel: u32,
    results: &mut Results,
) -> anyhow::Result<bool> {
    // The others rely on what the first host makes: a new database, the
    // first migrations.
    let mut waves: Vec<&[&HostPlan]> = Vec::new();
    let rest = if (first_deploy || plan.adds_database()) && busy.len() > 1 {
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
                let duties = Duties::of_host(env, index, first_deploy);
                (host.host.clone(), compile_host(env, plan, host, duties))
            })
            .collect();
        let mut failed = false;
        for v in submit_all(client, format, specs)? {
            let ok = v.state == ChangeState::Succeeded;
            failed |= !ok;
            results.insert(v.host.clone(), (v.id.clone(), ok));
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
fn leave(
    client: &mut Tower,
    format: Format,
    env: &Environment,
    plan: &DeployPlan,
    hosts: &[&HostPlan],
    results: &mut Results,
) -> anyhow::Result<Vec<String>> {
    if hosts.is_empty() {
        return Ok(Vec::new());
    }
    say!("back to the previous version on {} host(s)", hosts.len());
    let specs = hosts
        .iter()
        .map(|h| (h.host.clone(), compile_leave(env, plan, h)))
        .collect();
    let mut left = Vec::new();
    for v in submit_all(client, format, specs)? {
        if v.state == ChangeState::Succeeded {
            left.push(v.host.clone());
        } else {
            say!(
                "{}: could not leave maintenance (change {}): the host still answers 503",
                v.host,
                v.id
            );
        }
        results
            .entry(v.host.clone())
            .or_insert((v.id.clone(), false));
    }
    Ok(left)
}

/// What a maintenance deploy did so far, kept by the caller so that a
/// deploy cut by an error (the tower unreachable, a timeout) still records
/// which hosts may be in maintenance.
#[derive(Debug, Default)]
struct MaintenanceRun {
    /// Whether the deploy went through maintenance.
    went: bool,
    /// Hosts that may answer the maintenance page: every host from the
    /// moment its enter change is submitted until it is upgraded, went
    /// back, or its enter rolled back.
    in_maintenance: Vec<String>,
}

impl MaintenanceRun {
    fn out(&mut self, host: &str) {
        self.in_maintenance.retain(|h| h != host);
    }
}

/// Writes the environment's record for this deploy: while it runs an
/// `InProgress` entry (its own run may rewrite it), then the outcome.
struct Journal<'a> {
    previous: Option<&'a EnvRecord>,
    env: &'a Environment,
    plan: &'a DeployPlan,
    /// Tells this run's in-progress entry from another deploy's.
    token: String,
}

impl Journal<'_> {
    fn write(
        &self,
        client: &mut Tower,
        results: &Results,
        run: &MaintenanceRun,
        done: bool,
    ) -> anyhow::Result<()> {
        let mut record = settle(self.previous, self.plan, self.env, results);
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
        client
            .call(ApiCall::Deploy(DeployCall::Record {
                app: self.env.key.app.to_string(),
                environment: self.env.key.environment.to_string(),
                expected: u32::try_from(expected).unwrap_or(u32::MAX),
                record: record.to_json()?,
            }))
            .context("recording the deploy in the inventory")?;
        Ok(())
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

/// What to do with `waiting` (in maintenance, not upgraded) once a change
/// failed: the previous version back, or maintenance kept.
#[allow(clippy::too_many_arguments)]
fn recover(
    client: &mut Tower,
    format: Format,
    env: &Environment,
    plan: &DeployPlan,
    waiting: &[&HostPlan],
    committed: bool,
    results: &mut Results,
    run: &mut MaintenanceRun,
) -> anyhow::Result<()> {
    let names = waiting.iter().map(|h| h.host.clone()).collect();
    match recovery(names, committed) {
        Recovery::LeaveWithPrevious(_) => {
            for host in leave(client, format, env, plan, waiting, results)? {
                run.out(&host);
            }
        }
        Recovery::StayInMaintenance(hosts) => stay_in_maintenance(env, &hosts),
    }
    Ok(())
}

/// A deploy with pending migrations: every host enters maintenance, the
/// first upgrades and runs the migrations, then the others upgrade. A
/// failure brings the hosts still in maintenance back to the previous
/// version when the migrations did not commit, and leaves them in
/// maintenance when they did (`schema_ahead`: an earlier deploy already
/// migrated). Returns whether something failed.
#[allow(clippy::too_many_arguments)]
fn with_maintenance(
    client: &mut Tower,
    format: Format,
    env: &Environment,
    plan: &DeployPlan,
    busy: &[&HostPlan],
    schema_ahead: bool,
    journal: &Journal,
    results: &mut Results,
    run: &mut MaintenanceRun,
) -> anyhow::Result<bool> {
    say!("maintenance: entering on {} host(s)", busy.len());
    let specs = busy
        .iter()
        .map(|h| (h.host.clone(), compile_enter(env, plan, h)))
        .collect();
    run.went = true;
    run.in_maintenance = busy.iter().map(|h| h.host.clone()).collect();
    // Recorded before any host is touched (this also takes the
    // environment: a deploy planned meanwhile is refused), then after
    // each phase, so a deploy cut here leaves the truth behind.
    if let Err(e) = journal.write(client, results, run, false) {
        // Nothing was touched.
        *run = MaintenanceRun::default();
        return Err(e);
    }
    let mut entered = Vec::new();
    for v in submit_all(client, format, specs)? {
        if v.state == ChangeState::Succeeded {
            entered.extend(busy.iter().copied().find(|h| h.host == v.host));
        } else {
            say!("{}: could not enter maintenance (change {})", v.host, v.id);
            results.insert(v.host.clone(), (v.id.clone(), false));
            // Its enter rolled back: it serves what it served, unless an
            // earlier deploy had left it in maintenance already.
            if !schema_ahead {
                run.out(&v.host);
            }
        }
    }
    journal.write(client, results, run, false)?;
    if entered.len() < busy.len() {
        recover(
            client,
            format,
            env,
            plan,
            &entered,
            schema_ahead,
            results,
            run,
        )?;
        return Ok(true);
    }
    for (index, host) in busy.iter().enumerate() {
        let duties = Duties::of_host(env, index, true);
        let spec = compile_upgrade(env, plan, host, duties);
        let done = submit_all(client, format, vec![(host.host.clone(), spec)])?;
        let Some(v) = done.first() else {
            bail!("the upgrade of {} was not queued", host.host);
        };
        let ok = v.state == ChangeState::Succeeded;
        results.insert(v.host.clone(), (v.id.clone(), ok));
        if ok {
            run.out(&v.host);
            journal.write(client, results, run, false)?;
            continue;
        }
        say!(
            "{}: the new version rolled back (change {}): the deploy stops here",
            v.host,
            v.id
        );
        // Hosts already upgraded keep the new version; the others, this
        // one too, go back only if the migrations did not commit.
        let committed = migrations_committed(index, migrate_run(v), schema_ahead);
        recover(
            client,
            format,
            env,
            plan,
            &busy[index..],
            committed,
            results,
            run,
        )?;
        return Ok(true);
    }
    Ok(false)
}

pub fn deployments(a: DeploymentsArgs, format: Format) -> anyhow::Result<ExitCode> {
    let mut client = a.conn.client()?;
    let default = DeploymentsCmd::List {
        page: super::page::PageArgs {
            limit: vigie_wire::page::DEFAULT_PAGE,
            after: None,
        },
    };
    match a.what.unwrap_or(default) {
        DeploymentsCmd::List { page } => {
            let call = ApiCall::Deploy(DeployCall::List);
            let (answer, info) = super::page::call(&mut client, call, page.ask())?;
            let records = records(answer)?;
            for r in &records {
                if format == Format::Json {
                    super::out::json(&super::json::DeploymentJson::new(r, false))?;
                    continue;
                }
                let instances: Vec<String> = r
                    .components
                    .iter()
                    .map(|(c, s)| format!("{c}#{}", s.instance))
                    .collect();
                let hosts: Vec<String> = r.hosts.keys().map(|h| field(h).into_owned()).collect();
                say!(
                    "{:<24} {:>3} deploys  {}  on {}",
                    r.key.to_string(),
                    r.history.len(),
                    instances.join(" "),
                    hosts.join(",")
                );
            }
            super::page::footer(&info, format, "deployments")?;
        }
        DeploymentsCmd::Show { name } => {
            let records = inventory(&mut client)?;
            let Some(r) = records.iter().find(|r| r.key.to_string() == name) else {
                esay!("vigie deployments: no environment {name} (write APP/ENVIRONMENT)");
                return Ok(ExitCode::FAILURE);
            };
            if format == Format::Json {
                super::out::json(&super::json::DeploymentJson::new(r, true))?;
                return Ok(ExitCode::SUCCESS);
            }
            // A record is what a deploying operator's CLI wrote: its app,
            // component and service names are checked when it is read, its
            // hosts and changes are shown one line each, whatever they hold.
            say!("{}", r.key);
            for (c, s) in &r.components {
                say!("  {c}: instance {}", s.instance);
            }
            for (host, state) in &r.hosts {
                say!(
                    "  {}: proxy port {:?}{}",
                    field(host),
                    state.proxy_port,
                    if state.maintenance {
                        ", in maintenance (deploy --from-maintenance)"
                    } else {
                        ""
                    }
                );
                for (name, p) in &state.services {
                    say!(
                        "    {} #{}: {} replica(s), ports {:?}",
                        name,
                        p.instance,
                        p.replicas,
                        p.ports
                    );
                }
            }
            for d in &r.history {
                let bumped: Vec<String> =
                    d.bumped.iter().map(|(c, n)| format!("{c}#{n}")).collect();
                let changes: Vec<String> = d
                    .changes
                    .iter()
                    .map(|(h, c)| format!("{}:{}", field(h), field(c)))
                    .collect();
                say!(
                    "  #{} {:?}{} bumped [{}] changes [{}]",
                    d.number,
                    d.outcome,
                    if d.maintenance { " (maintenance)" } else { "" },
                    bumped.join(" "),
                    changes.join(" ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
