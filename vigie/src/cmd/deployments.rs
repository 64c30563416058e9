//! `vigie deployments list|show|watch|check` (and the verbs of
//! `deploy_verbs.rs`): what the deployer
//! deployed, from its inventory (through the referee); `watch` follows a
//! deploy the tower runs (`rollout.rs`), `check` compares the inventory
//! with what runs (`deploy_check.rs`).

use std::process::ExitCode;

use anyhow::Context;

use vigie_client::calls;
use vigie_deployer::EnvRecord;
use vigie_wire::deploy::{Deployment, RolloutCommand};

use super::conn::{Conn, Tower};
use super::escape::field;
use super::out::{esay, sayio, Format};

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
    #[command(flatten)]
    Verb(super::deploy_verbs::VerbCmd),
    /// A deploy waiting after its canary (`deploy --canary N`): deploy
    /// the other hosts, and follow it.
    Continue {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
    },
    /// A deploy waiting after its canary: take the canary hosts back to
    /// the previous version, and follow it (exit 0 once rolled back).
    Abort {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
    },
}

/// The deployer's inventory: every environment's record.
pub(super) fn inventory(client: &mut Tower) -> anyhow::Result<Vec<EnvRecord>> {
    records(&client.ask(calls::DeployList)?)
}

fn records(all: &[Deployment]) -> anyhow::Result<Vec<EnvRecord>> {
    all.iter()
        .map(|d| {
            EnvRecord::from_json(&d.record)
                .with_context(|| format!("the record of {}/{}", d.app, d.environment))
        })
        .collect()
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
        DeploymentsCmd::Verb(cmd) => super::deploy_verbs::run(&mut client, cmd, format),
        DeploymentsCmd::Continue { name } => {
            command(&mut client, &name, RolloutCommand::Continue, format)
        }
        DeploymentsCmd::Abort { name } => {
            command(&mut client, &name, RolloutCommand::Abort, format)
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
            let running = match super::deploy_canary::rollout_of(&mut client, &r.key) {
                Ok(found) => found,
                Err(None) => None,
                Err(Some(e)) => return Err(e),
            };
            if format == Format::Json {
                let json = super::json::DeploymentJson::new(r, true, running.as_ref());
                super::out::json(&json)?;
            } else {
                show(r)?;
                super::deploy_canary::show_running(running.as_ref(), &r.key)?;
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `continue` or `abort` of a canary, then the rollout followed to its end.
fn command(
    client: &mut Tower,
    name: &str,
    command: RolloutCommand,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let key = super::rollout::env_key(name)?;
    let stop = super::rollout::interrupt_flag()?;
    let expected = super::deploy_canary::send(client, &key, command, format)?;
    super::rollout::follow_to(client, &key, None, format, &stop, expected)
}

fn list(
    client: &mut Tower,
    page: super::page::PageArgs,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let (all, info) = super::page::call(client, calls::DeployList, page.ask())?;
    // Asked per environment, until the caller's grants do not reach one.
    let mut ask = true;
    for r in &records(&all)? {
        let running = match ask.then(|| super::deploy_canary::rollout_of(client, &r.key)) {
            Some(Ok(found)) => found,
            Some(Err(None)) => {
                ask = false;
                None
            }
            Some(Err(Some(e))) => return Err(e),
            None => None,
        };
        if format == Format::Json {
            let json = super::json::DeploymentJson::new(r, false, running.as_ref());
            super::out::json(&json)?;
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
        if let Some(line) = running.and_then(|x| super::deploy_canary::running_text(&x, &r.key)) {
            sayio!("  {line}");
        }
    }
    super::page::footer(&info, format, "deployments")?;
    Ok(ExitCode::SUCCESS)
}

/// One environment in words. A record is what the deploy daemon wrote:
/// its app, component and service names are checked when it is read,
/// its hosts and changes are shown one line each, whatever they hold.
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
            } else if state.paused {
                ", maintenance page by hand (deployments maintenance APP/ENV off)"
            } else {
                ""
            }
        );
        for (name, p) in &state.services {
            sayio!(
                "    {} #{}: {} replica(s), ports {}{}",
                name,
                p.instance,
                p.replicas,
                ports_text(&p.ports),
                if state.stopped.contains(name) {
                    ", stopped"
                } else {
                    ""
                }
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
    let version = d
        .version
        .as_ref()
        .map_or(String::new(), |v| format!(" version {}", field(v)));
    let what = match &d.verb {
        Some(verb) => field(verb).into_owned(),
        None => revisions.join(" "),
    };
    format!(
        "  #{}{when}{version} {} {}{} bumped [{}] changes [{}]",
        d.number,
        what,
        outcome_word(d.outcome),
        if d.maintenance { " (maintenance)" } else { "" },
        bumped.join(" "),
        changes.join(" ")
    )
}

/// Ports as `27100,27101`, `-` for none (a worker).
pub(super) fn ports_text(ports: &[u16]) -> String {
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
