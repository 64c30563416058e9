//! `vigie deploy ENV.yml [--plan] [--parallel N]` and `vigie deployments
//! list|show`: the deployer's operator side. A deploy reads the
//! environment, the tenant's hosts and the deployer's inventory (through
//! the referee), plans it (`vigie_deployer::plan`, pure), submits one
//! change request per host — `--parallel` hosts at a time, one by default —
//! follows them, stops at the first host that rolls back, and records the
//! outcome in the inventory.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use vigie_deployer::{
    compile_host, load_environment, plan, settle, DeployPlan, EnvRecord, Environment, Target,
};
use vigie_wire::change::Action;
use vigie_wire::deploy::{DeployAnswer, DeployCall};
use vigie_wire::tower::{ApiAnswer, ApiCall, ChangeState};

use super::conn::{Conn, Tower};
use super::out::Format;
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
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Args)]
pub struct DeploymentsArgs {
    #[command(subcommand)]
    what: Option<DeploymentsCmd>,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, clap::Subcommand)]
enum DeploymentsCmd {
    /// Every environment deployed in the tenant (the default).
    List,
    /// One environment: instance numbers, hosts, history.
    Show {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
    },
}

fn inventory(client: &mut Tower) -> anyhow::Result<Vec<EnvRecord>> {
    match client.call(ApiCall::Deploy(DeployCall::List))? {
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
    println!("deploy {} #{}", env.key, plan.number);
    if plan.bumps.is_empty() {
        println!("  no component changed");
    }
    for bump in &plan.bumps {
        match bump.from {
            Some(from) => println!("  {}: instance {from} → {}", bump.component, bump.to),
            None => println!("  {}: instance {} (new)", bump.component, bump.to),
        }
    }
    for host in &plan.hosts {
        if host.services.is_empty() {
            println!(
                "  {}: up to date (proxy {}:{})",
                host.host, host.address, host.proxy_port
            );
            continue;
        }
        println!(
            "  {}: proxy {}:{}",
            host.host, host.address, host.proxy_port
        );
        for s in &host.services {
            let was = s
                .previous
                .as_ref()
                .map_or("new".to_string(), |p| format!("replaces #{}", p.instance));
            println!(
                "    {} #{} ({}), {} replica(s), ports {:?}, {was}",
                s.name, s.instance, s.spec.revision, s.spec.replicas, s.ports
            );
        }
        if steps {
            for (i, step) in compile_host(env, plan, host).steps.iter().enumerate() {
                let kind = match &step.action {
                    Action::Run { .. } => "run",
                    Action::File { .. } => "file",
                    Action::Remove { .. } => "remove",
                    Action::Check { .. } => "check",
                };
                println!("      {:>3}. {kind:<6} {}", i + 1, step.name);
            }
        }
    }
}

pub fn deploy(a: DeployArgs, format: Format) -> anyhow::Result<ExitCode> {
    let env = match load_environment(&a.file) {
        Ok(env) => env,
        Err(e) => {
            eprintln!("vigie deploy: {e}");
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
            eprintln!("vigie deploy: {e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    print_plan(&env, &plan, a.plan);
    if a.plan {
        return Ok(ExitCode::SUCCESS);
    }

    let busy: Vec<_> = plan.busy_hosts().collect();
    let mut results = std::collections::BTreeMap::new();
    let mut failed = false;
    for wave in busy.chunks(a.parallel as usize) {
        let mut ids = Vec::new();
        for host in wave {
            let spec = compile_host(&env, &plan, host);
            let views = client.changes(ApiCall::Submit {
                spec,
                target: host.host.clone(),
            })?;
            for v in views {
                println!("{}: change {} queued", v.host, v.id);
                ids.push(v.id);
            }
        }
        let done = super::tower::follow(format, &mut client, &ids, None)?;
        for v in done {
            let ok = v.state == ChangeState::Succeeded;
            failed |= !ok;
            results.insert(v.host.clone(), (v.id.clone(), ok));
        }
        if failed {
            println!("a host rolled back: the deploy stops here");
            break;
        }
    }
    let record = settle(previous, &plan, &env, &results);
    let expected = previous.map_or(0, |p| p.history.len());
    client.call(ApiCall::Deploy(DeployCall::Record {
        app: env.key.app.to_string(),
        environment: env.key.environment.to_string(),
        expected: u32::try_from(expected).unwrap_or(u32::MAX),
        record: record.to_json()?,
    }))?;
    println!(
        "deploy {} #{}: {}",
        env.key,
        plan.number,
        if failed { "rolled back" } else { "succeeded" }
    );
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn deployments(a: DeploymentsArgs, format: Format) -> anyhow::Result<ExitCode> {
    let mut client = a.conn.client()?;
    let records = inventory(&mut client)?;
    match a.what.unwrap_or(DeploymentsCmd::List) {
        DeploymentsCmd::List => {
            for r in &records {
                if format == Format::Json {
                    println!("{}", serde_json::to_string(r)?);
                    continue;
                }
                let instances: Vec<String> = r
                    .components
                    .iter()
                    .map(|(c, s)| format!("{c}#{}", s.instance))
                    .collect();
                let hosts: Vec<&str> = r.hosts.keys().map(String::as_str).collect();
                println!(
                    "{:<24} {:>3} deploys  {}  on {}",
                    r.key.to_string(),
                    r.history.len(),
                    instances.join(" "),
                    hosts.join(",")
                );
            }
        }
        DeploymentsCmd::Show { name } => {
            let Some(r) = records.iter().find(|r| r.key.to_string() == name) else {
                eprintln!("vigie deployments: no environment {name} (write APP/ENVIRONMENT)");
                return Ok(ExitCode::FAILURE);
            };
            if format == Format::Json {
                println!("{}", serde_json::to_string(r)?);
                return Ok(ExitCode::SUCCESS);
            }
            println!("{}", r.key);
            for (c, s) in &r.components {
                println!("  {c}: instance {}", s.instance);
            }
            for (host, state) in &r.hosts {
                println!("  {host}: proxy port {:?}", state.proxy_port);
                for (name, p) in &state.services {
                    println!(
                        "    {name} #{}: {} replica(s), ports {:?}",
                        p.instance, p.replicas, p.ports
                    );
                }
            }
            for d in &r.history {
                let bumped: Vec<String> =
                    d.bumped.iter().map(|(c, n)| format!("{c}#{n}")).collect();
                let changes: Vec<String> =
                    d.changes.iter().map(|(h, c)| format!("{h}:{c}")).collect();
                println!(
                    "  #{} {:?} bumped [{}] changes [{}]",
                    d.number,
                    d.outcome,
                    bumped.join(" "),
                    changes.join(" ")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
