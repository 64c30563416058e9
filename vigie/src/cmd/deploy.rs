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

use vigie_client::calls;
use vigie_deployer::{
    load_environment, migration_check, plan, EnvRecord, Environment, HostPlan, Outcome, Target,
};

use super::conn::{Conn, Tower};
use super::deploy_run::Run;
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

fn targets(client: &mut Tower, env: &Environment) -> anyhow::Result<Vec<Target>> {
    let selector = vigie_changes::Selector::parse(&env.hosts)?;
    let mut hosts = client.ask(calls::Hosts)?;
    hosts.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(hosts
        .iter()
        .filter(|h| selector.matches(&h.id, &h.labels))
        .map(|h| Target::from_labels(&h.id, &h.labels))
        .collect::<Result<_, _>>()?)
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
    let records = super::deployments::inventory(&mut client)?;
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
    super::deploy_plan::print_plan(&env, &plan, a.plan);
    let stuck = previous.map(EnvRecord::in_maintenance).unwrap_or_default();
    if let Some(refused) = refuse_stuck(&a, &env, previous, &stuck) {
        return Ok(refused);
    }
    if a.plan {
        return Ok(ExitCode::SUCCESS);
    }
    let busy: Vec<&HostPlan> = plan.busy_hosts().collect();
    let check = migration_check(&env, &plan);
    let mut run = Run::new(&mut client, format, &env, &plan, previous);
    // Forced by hosts an earlier deploy left in maintenance: the schema
    // may be ahead of their code, so they only ever get a new version.
    let outcome = if !stuck.is_empty() && !busy.is_empty() {
        say!(
            "{} in maintenance since an earlier deploy: maintenance deploy, the previous version is never restarted",
            stuck.join(", ")
        );
        run.with_maintenance(&busy, true)
    } else {
        run.steps(&busy, check, a.parallel)
    };
    // Recorded whatever happened, a cut deploy too: the next deploy plans
    // from what the hosts run and sees the hosts left in maintenance.
    let recorded = run.write(true);
    let in_maintenance = std::mem::take(&mut run.maintenance.in_maintenance);
    report(&env, plan.number, outcome, recorded, &in_maintenance)
}

/// Hosts an earlier deploy left in maintenance: said with `--plan`, and
/// the deploy refused unless `--from-maintenance`.
fn refuse_stuck(
    a: &DeployArgs,
    env: &Environment,
    previous: Option<&EnvRecord>,
    stuck: &[String],
) -> Option<ExitCode> {
    if stuck.is_empty() {
        return None;
    }
    let hint = "the migrations of an earlier deploy may have been applied, so the previous version must not run again; fix the new version and deploy it with --from-maintenance";
    if a.plan {
        say!("  in maintenance: {} ({hint})", stuck.join(", "));
        return None;
    }
    if a.from_maintenance {
        return None;
    }
    let last = previous.and_then(|p| p.history.last());
    esay!(
        "vigie deploy: {} of {} in maintenance (503), left there by deploy #{}{}: {hint}",
        stuck.join(", "),
        env.key,
        last.map_or(0, |d| d.number),
        if last.is_some_and(|d| d.outcome == Outcome::InProgress) {
            " (still in progress, or cut short)"
        } else {
            ""
        }
    );
    Some(ExitCode::FAILURE)
}

/// The deploy's end in words, and its exit code.
fn report(
    env: &Environment,
    number: u32,
    outcome: anyhow::Result<bool>,
    recorded: anyhow::Result<()>,
    in_maintenance: &[String],
) -> anyhow::Result<ExitCode> {
    let failed = match outcome {
        Ok(failed) => failed,
        Err(e) => {
            if !in_maintenance.is_empty() {
                esay!(
                    "vigie deploy: cut short; may be in maintenance: {}",
                    in_maintenance.join(", ")
                );
            }
            return Err(match recorded {
                Ok(_) => e,
                Err(r) => e.context(format!("and the deploy could not be recorded: {r:#}")),
            });
        }
    };
    recorded?;
    say!(
        "deploy {} #{}: {}",
        env.key,
        number,
        match (failed, in_maintenance.is_empty()) {
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
