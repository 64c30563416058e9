//! `vigie deployments undeploy|stop|start|restart|rollback|maintenance|clean
//! APP/ENV`: verbs on a deployed environment, run by the tower like a
//! deploy (same lock, same grant, audited `deploy_verb`, each phase
//! recorded before it acts) and followed like one (`rollout.rs`: Ctrl-C
//! detaches; `deployments watch` follows again).

use std::io::BufRead;
use std::process::ExitCode;

use vigie_client::calls;
use vigie_wire::deploy::EnvVerb;

use super::conn::Tower;
use super::failure::{Cause, Failure};
use super::out::{sayio, Format};

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Switch {
    On,
    Off,
}

#[derive(Debug, clap::Subcommand)]
pub enum VerbCmd {
    /// Removes the environment from its hosts: replicas stopped, proxy
    /// site and instance directories removed. Databases are kept unless
    /// --drop-data (the environment's name is then asked again on stdin).
    Undeploy {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
        /// Also drop the environment's databases and their roles.
        #[arg(long)]
        drop_data: bool,
        /// Take the environment from a rollout the tower lost track of (audited).
        #[arg(long)]
        force_unlock: bool,
    },
    /// Stops the replicas of every service, or of one (--service).
    Stop {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// Take the environment from a rollout the tower lost track of (audited).
        #[arg(long)]
        force_unlock: bool,
    },
    /// Starts the replicas stopped by `stop` (each web replica checked).
    Start {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// Take the environment from a rollout the tower lost track of (audited).
        #[arg(long)]
        force_unlock: bool,
    },
    /// Restarts replicas one at a time, each out of the proxy until it is
    /// healthy again (no request lost with two replicas or more).
    Restart {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
        /// Only this service.
        #[arg(long)]
        service: Option<String>,
        /// Take the environment from a rollout the tower lost track of (audited).
        #[arg(long)]
        force_unlock: bool,
    },
    /// Back to the previous instance kept on disk: started on fresh
    /// ports, checked, switched to replica by replica (no fetch).
    Rollback {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
        /// Take the environment from a rollout the tower lost track of (audited).
        #[arg(long)]
        force_unlock: bool,
    },
    /// The maintenance page by hand (503 with Retry-After; the page of
    /// `maintenance_page:` in environment.yml), or the replicas again.
    Maintenance {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
        /// on: the page; off: the replicas.
        state: Switch,
        /// Take the environment from a rollout the tower lost track of (audited).
        #[arg(long)]
        force_unlock: bool,
    },
    /// Removes what the inventory does not own on the environment's hosts
    /// (instance directories beyond the running and the kept one, stray
    /// auto-APP-ENV-* directories); never an instance that runs.
    Clean {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        name: String,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Take the environment from a rollout the tower lost track of (audited).
        #[arg(long)]
        force_unlock: bool,
    },
}

/// The name typed again on stdin, for `--drop-data`.
fn typed_again(name: &str) -> anyhow::Result<String> {
    sayio!(
        "undeploy --drop-data drops the databases of {name} and their data: type {name} to go on"
    );
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let typed = line.trim_end_matches(['\n', '\r']).to_owned();
    if typed != name {
        return Err(Failure::error(
            Cause::Usage,
            format!("{typed:?} is not {name:?}: nothing was touched"),
        ));
    }
    Ok(typed)
}

fn asked(cmd: VerbCmd) -> anyhow::Result<(String, EnvVerb, bool)> {
    Ok(match cmd {
        VerbCmd::Undeploy {
            name,
            drop_data,
            force_unlock,
        } => {
            let drop_data = if drop_data {
                Some(typed_again(&name)?)
            } else {
                None
            };
            (name, EnvVerb::Undeploy { drop_data }, force_unlock)
        }
        VerbCmd::Stop {
            name,
            service,
            force_unlock,
        } => (name, EnvVerb::Stop { service }, force_unlock),
        VerbCmd::Start {
            name,
            service,
            force_unlock,
        } => (name, EnvVerb::Start { service }, force_unlock),
        VerbCmd::Restart {
            name,
            service,
            force_unlock,
        } => (name, EnvVerb::Restart { service }, force_unlock),
        VerbCmd::Rollback { name, force_unlock } => (name, EnvVerb::Rollback, force_unlock),
        VerbCmd::Maintenance {
            name,
            state,
            force_unlock,
        } => (
            name,
            EnvVerb::Maintenance {
                on: state == Switch::On,
            },
            force_unlock,
        ),
        VerbCmd::Clean {
            name,
            dry_run,
            force_unlock,
        } => (name, EnvVerb::Clean { dry_run }, force_unlock),
    })
}

/// Sends the verb to the tower and follows it to its end.
pub fn run(client: &mut Tower, cmd: VerbCmd, format: Format) -> anyhow::Result<ExitCode> {
    let (name, verb, force_unlock) = asked(cmd)?;
    let key = super::rollout::env_key(&name)?;
    let stop = super::rollout::interrupt_flag()?;
    let word = verb.word();
    let id = client.ask(calls::DeployVerb {
        app: key.app.to_string(),
        environment: key.environment.to_string(),
        verb,
        force_unlock,
    })?;
    if format != Format::Json {
        sayio!("{word} of {key} started in the tower (rollout {id}): Ctrl-C detaches, it goes on");
    }
    super::rollout::follow(client, &key, Some(&id), format, &stop)
}
