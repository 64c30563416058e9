//! `vigie deployments list|show`: what the deployer deployed, from its
//! inventory (through the referee).

use std::process::ExitCode;

use anyhow::Context;

use vigie_client::calls;
use vigie_deployer::EnvRecord;
use vigie_wire::deploy::Deployment;

use super::conn::{Conn, Tower};
use super::escape::field;
use super::out::{esay, say, Format};

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
        DeploymentsCmd::Show { name } => {
            let records = inventory(&mut client)?;
            let Some(r) = records.iter().find(|r| r.key.to_string() == name) else {
                esay!("vigie deployments: no environment {name} (write APP/ENVIRONMENT)");
                return Ok(ExitCode::FAILURE);
            };
            if format == Format::Json {
                super::out::json(&super::json::DeploymentJson::new(r, true))?;
            } else {
                show(r);
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
    let (all, info) = super::page::call(client, calls::DeployList, page.ask())?;
    for r in &records(&all)? {
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
    Ok(ExitCode::SUCCESS)
}

/// One environment in words. A record is what a deploying operator's CLI
/// wrote: its app, component and service names are checked when it is
/// read, its hosts and changes are shown one line each, whatever they hold.
fn show(r: &EnvRecord) {
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
        let bumped: Vec<String> = d.bumped.iter().map(|(c, n)| format!("{c}#{n}")).collect();
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
