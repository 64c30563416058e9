//! `vigie deploy ENV.yml [--plan] [--parallel N] [--from-maintenance]
//! [--force-unlock]`: the deployer's operator side. A deploy is run by
//! the tower's deploy daemon (`vigie_deployd`): the CLI checks the
//! environment, sends it (`DeployStart`; refused while another deploy of
//! the environment runs) and follows the rollout's lines (`rollout.rs`);
//! Ctrl-C or a killed CLI leaves the deploy going. `--plan` plans here,
//! from the inventory, and sends nothing (`deploy_plan.rs` says it).

use std::path::PathBuf;
use std::process::ExitCode;

use vigie_client::calls;
use vigie_deployer::{plan, read_environment, EnvRecord, Environment, Target};

use super::conn::{Conn, Tower};
use super::out::{esay, say, sayio, Format};
use crate::runtime::EXIT_CONFIG;

#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The environment (environment.yml), or APP/ENV with --version.
    file: PathBuf,
    /// Deploy APP/ENV as this version of the application catalog holds it
    /// (`vigie apps show APP`) instead of a file.
    #[arg(long, value_name = "V")]
    version: Option<String>,
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
    /// Take the environment from a deploy the tower lost track of (its
    /// daemon gone for good): audited; that deploy's daemon stops acting.
    #[arg(long)]
    force_unlock: bool,
    /// Deploy this many hosts first, then wait for `vigie deployments
    /// continue APP/ENV` (the other hosts) or `abort` (the canary hosts
    /// back to the previous version).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1000))]
    canary: u32,
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
    if let Some(version) = a.version {
        let flags = super::deploy_catalog::Flags {
            plan: a.plan,
            parallel: a.parallel,
            from_maintenance: a.from_maintenance,
            force_unlock: a.force_unlock,
        };
        let what = a.file.display().to_string();
        return match super::deploy_catalog::deploy(&what, version, flags, a.conn, format)? {
            super::deploy_catalog::Outcome::Done(code) => Ok(code),
            super::deploy_catalog::Outcome::Plan(env, mut client) => show_plan(&mut client, &env),
        };
    }
    let (env, text) = match read_environment(&a.file) {
        Ok(read) => read,
        Err(e) => {
            esay!("vigie deploy: {e}");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let mut client = a.conn.client()?;
    if a.plan {
        return show_plan(&mut client, &env);
    }
    let stop = super::rollout::interrupt_flag()?;
    let id = client.ask(calls::DeployStart {
        file: a.file.display().to_string(),
        text,
        parallel: a.parallel,
        from_maintenance: a.from_maintenance,
        force_unlock: a.force_unlock,
        canary: a.canary,
    })?;
    if format != Format::Json {
        say!(
            "deploy of {} started in the tower (rollout {id}): Ctrl-C detaches, the deploy goes on",
            env.key
        );
    }
    super::rollout::follow(&mut client, &env.key, Some(&id), format, &stop)
}

/// `--plan`: what the deploy would do, planned here from the inventory,
/// nothing sent.
fn show_plan(client: &mut Tower, env: &Environment) -> anyhow::Result<ExitCode> {
    let targets = targets(client, env)?;
    let records = super::deployments::inventory(client)?;
    let previous = records.iter().find(|r| r.key == env.key);
    let others: Vec<EnvRecord> = records
        .iter()
        .filter(|r| r.key != env.key)
        .cloned()
        .collect();
    let plan = match plan(env, previous, &targets, &others) {
        Ok(plan) => plan,
        Err(e) => {
            esay!("vigie deploy: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    super::deploy_plan::print_plan(env, &plan, true)?;
    let stuck = previous.map(EnvRecord::in_maintenance).unwrap_or_default();
    if !stuck.is_empty() {
        sayio!(
            "  in maintenance: {} (the migrations of an earlier deploy may have been applied, so the previous version must not run again; fix the new version and deploy it with --from-maintenance)",
            stuck.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
