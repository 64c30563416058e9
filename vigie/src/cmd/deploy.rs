//! `vigie deploy ENV.yml [--plan] [--parallel N] [--from-maintenance]
//! [--force-unlock]` and `vigie deployments list|show|watch`: the
//! deployer's operator side. A deploy is run by the tower's deploy daemon
//! (`vigie_deployd`): the CLI checks the environment, sends it (`Start`;
//! refused while another deploy of the environment runs) and follows the
//! rollout's lines (`rollout.rs`); Ctrl-C or a killed CLI leaves the
//! deploy going. `--plan` plans here, from the inventory, and sends
//! nothing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};

use vigie_deployer::{
    compile_enter, compile_host, compile_upgrade, migration_check, plan, read_environment,
    DeployPlan, Duties, EnvRecord, Environment, MigrationCheck, Target,
};
use vigie_wire::change::Action;
use vigie_wire::deploy::{DeployAnswer, DeployCall};
use vigie_wire::tower::{ApiAnswer, ApiCall};

use super::conn::{Conn, Tower};
use super::escape::field;
use super::out::{esay, say, sayio, Format};
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
    /// Take the environment from a deploy the tower lost track of (its
    /// daemon gone for good): audited; that deploy's daemon stops acting.
    #[arg(long)]
    force_unlock: bool,
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
    /// Follow the environment's deploy running in the tower (or show the
    /// last one) until it ends; Ctrl-C stops following, not the deploy.
    Watch {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
    },
    /// The inventory against what runs on each host: instance dirs,
    /// supervisors alive, ports listening, the nginx site (exit 1 when
    /// something differs). Sends each host a change that only reads.
    Check {
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

fn print_plan(env: &Environment, plan: &DeployPlan, steps: bool) -> std::io::Result<()> {
    sayio!("deploy {} #{}", env.key, plan.number);
    let first = plan.busy_hosts().next().map_or("-", |h| h.host.as_str());
    match migration_check(env, plan) {
        MigrationCheck::NotNeeded => {}
        MigrationCheck::FirstDeploy => sayio!("  migrations: run on {first} before anything starts"),
        MigrationCheck::Probe => sayio!(
            "  migrations: {first} is asked whether any are pending; if so, maintenance on every host and migrations on {first}"
        ),
        MigrationCheck::Pending => sayio!(
            "  migrations: pending (a new database): maintenance on every host and migrations on {first}"
        ),
    }
    if plan.bumps.is_empty() {
        sayio!("  no component changed");
    }
    for bump in &plan.bumps {
        match bump.from {
            Some(from) => sayio!("  {}: instance {from} → {}", bump.component, bump.to),
            None => sayio!("  {}: instance {} (new)", bump.component, bump.to),
        }
    }
    for host in &plan.hosts {
        if host.services.is_empty() && !host.maintenance {
            sayio!(
                "  {}: up to date (proxy {}:{})",
                host.host,
                host.address,
                host.proxy_port
            );
            continue;
        }
        sayio!(
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
            sayio!(
                "    {} #{} ({}), {} replica(s), ports {}, {was}",
                s.name,
                s.instance,
                s.spec.revision,
                s.spec.replicas,
                ports_text(&s.ports)
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
                    sayio!("      if migrations are pending (else a rolling update):");
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
                sayio!("      {:>3}. {kind:<6} {}", i + 1, step.name);
            }
        }
    }
    Ok(())
}

pub fn deploy(a: DeployArgs, format: Format) -> anyhow::Result<ExitCode> {
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
    let call = ApiCall::Deploy(DeployCall::Start {
        file: a.file.display().to_string(),
        text,
        parallel: a.parallel,
        from_maintenance: a.from_maintenance,
        force_unlock: a.force_unlock,
    });
    let id = match client.call(call)? {
        ApiAnswer::Deploy(DeployAnswer::Started { id }) => id,
        other => bail!("unexpected answer: {other:?}"),
    };
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
    let records = inventory(client)?;
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
    print_plan(env, &plan, true)?;
    let stuck = previous.map(EnvRecord::in_maintenance).unwrap_or_default();
    if !stuck.is_empty() {
        sayio!(
            "  in maintenance: {} (the migrations of an earlier deploy may have been applied, so the previous version must not run again; fix the new version and deploy it with --from-maintenance)",
            stuck.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Ports as `27100,27101`, `-` for none (a worker).
fn ports_text(ports: &[u16]) -> String {
    if ports.is_empty() {
        return "-".into();
    }
    let words: Vec<String> = ports.iter().map(u16::to_string).collect();
    words.join(",")
}

fn outcome_word(o: vigie_deployer::Outcome) -> &'static str {
    use vigie_deployer::Outcome;
    match o {
        Outcome::Succeeded => "succeeded",
        Outcome::RolledBack => "rolled back",
        Outcome::InMaintenance => "in maintenance",
        Outcome::InProgress => "in progress",
    }
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
        DeploymentsCmd::List { page } => list(&mut client, page, format),
        DeploymentsCmd::Check { name } => {
            let key = super::rollout::env_key(&name)?;
            let records = inventory(&mut client)?;
            super::deploy_check::check(&mut client, &key, &records, format)
        }
        DeploymentsCmd::Watch { name } => {
            let key = super::rollout::env_key(&name)?;
            let stop = super::rollout::interrupt_flag()?;
            super::rollout::follow(&mut client, &key, None, format, &stop)
        }
        DeploymentsCmd::Show { name } => {
            let records = inventory(&mut client)?;
            let Some(r) = records.iter().find(|r| r.key.to_string() == name) else {
                esay!("vigie deployments: no environment {name} (write APP/ENVIRONMENT)");
                return Ok(ExitCode::FAILURE);
            };
            if format == Format::Json {
                super::out::json(&super::json::DeploymentJson::new(r, true))?;
            } else {
                show(r)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn list(
    client: &mut Tower,
    page: super::page::PageArgs,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let call = ApiCall::Deploy(DeployCall::List);
    let (answer, info) = super::page::call(client, call, page.ask())?;
    for r in &records(answer)? {
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
        sayio!(
            "{:<24} {:>3} deploys  {}  on {}",
            r.key.to_string(),
            r.history.len(),
            instances.join(" "),
            hosts.join(",")
        );
    }
    super::page::footer(&info, format, "deployments")?;
    Ok(ExitCode::SUCCESS)
}

/// `deployments show`: a record is what the deploy daemon wrote: its
/// app, component and service names are checked when it is read, its
/// hosts and changes shown one line each, whatever they hold.
fn show(r: &EnvRecord) -> std::io::Result<()> {
    sayio!("{}", r.key);
    for (c, s) in &r.components {
        sayio!("  {c}: instance {}", s.instance);
    }
    for (host, state) in &r.hosts {
        sayio!(
            "  {}: proxy port {}{}",
            field(host),
            state.proxy_port.map_or("-".to_string(), |p| p.to_string()),
            if state.maintenance {
                ", in maintenance (deploy --from-maintenance)"
            } else {
                ""
            }
        );
        for (name, p) in &state.services {
            sayio!(
                "    {} #{}: {} replica(s), ports {}",
                name,
                p.instance,
                p.replicas,
                ports_text(&p.ports)
            );
        }
    }
    for d in &r.history {
        sayio!("{}", history_line(d));
    }
    Ok(())
}

/// One deploy of the history: number, when and by whom, revisions,
/// outcome, what it bumped, its changes.
fn history_line(d: &vigie_deployer::DeployRecord) -> String {
    let bumped: Vec<String> = d.bumped.iter().map(|(c, n)| format!("{c}#{n}")).collect();
    let changes: Vec<String> = d
        .changes
        .iter()
        .map(|(h, c)| format!("{}:{}", field(h), field(c)))
        .collect();
    let revisions: Vec<String> = d
        .revisions
        .iter()
        .map(|(s, r)| format!("{s}@{}", field(r)))
        .collect();
    let when = d.at_ms.map_or(String::new(), |ms| {
        format!(
            " {} by {}",
            super::json::rfc3339(ms),
            field(d.operator.as_deref().unwrap_or("?"))
        )
    });
    format!(
        "  #{}{when} {} {}{} bumped [{}] changes [{}]",
        d.number,
        revisions.join(" "),
        outcome_word(d.outcome),
        if d.maintenance { " (maintenance)" } else { "" },
        bumped.join(" "),
        changes.join(" ")
    )
}
