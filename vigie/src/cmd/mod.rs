//! The command line: one subcommand per daemon, plus the operator's client.

mod apps;
mod change_text;
mod completions;
pub mod conn;
mod demo;
mod deploy;
mod deploy_canary;
mod deploy_catalog;
mod deploy_check;
mod deploy_plan;
mod deploy_verbs;
mod deployd;
mod deployments;
mod escalator;
pub mod escape;
pub mod failure;
mod fleet_logs;
mod health;
mod ips;
mod json;
mod json_catalog;
mod key_arg;
mod kv;
mod lifecycle;
mod majordomo;
mod metrics;
mod observe;
mod operators;
pub mod out;
mod pace;
mod page;
mod plug;
mod progress;
mod provisioner;
mod referee;
mod rollout;
mod servers;
mod servers_life;
mod start;
mod tower;
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The default Escalator endpoint of a tower on this machine.
pub const DEFAULT_ESCALATOR: &str = "tcp://127.0.0.1:7100";
/// The referee's endpoints: operators' API, plugs' events, orders and updates.
pub const DEFAULT_API: &str = "tcp://127.0.0.1:7101";
pub const DEFAULT_EVENTS: &str = "tcp://127.0.0.1:7102";
pub const DEFAULT_ORDERS: &str = "tcp://127.0.0.1:7103";
/// The majordomo's front door.
pub const DEFAULT_MAJORDOMO: &str = "tcp://127.0.0.1:7110";

/// The tower's internal endpoints, as the referee binds them and the
/// majordomo reaches them.
#[derive(Debug, clap::Args)]
pub struct TowerEndpoints {
    /// The Escalator the tower's state lives in.
    #[arg(long, default_value = DEFAULT_ESCALATOR)]
    pub escalator: String,
    /// The referee's ROUTER for operators' calls.
    #[arg(long, default_value = DEFAULT_API)]
    pub api: String,
    /// The referee's PULL for plugs' events.
    #[arg(long, default_value = DEFAULT_EVENTS)]
    pub events: String,
    /// The referee's PUB for orders and change updates.
    #[arg(long, default_value = DEFAULT_ORDERS)]
    pub orders: String,
}

/// `--limits JSON` of the referee and the majordomo: the setup's
/// `limits:` (fields left out keep their default), checked.
pub fn parse_limits(text: &str) -> Result<vigie_wire::limits::Shares, String> {
    let shares: vigie_wire::limits::Shares =
        serde_json::from_str(text).map_err(|e| format!("{text:?}: {e}"))?;
    shares.check()?;
    Ok(shares)
}

/// The exit codes, in `vigie --help` and the `vigie(1)` man page.
const EXIT_STATUS: &str = "\
Exit status (the same code and kind in --json's error object on stdout,
{\"error\":{\"code\":79,\"kind\":\"not_found\",\"message\":\"...\"}}):
  0   success
  1   failure: any other cause (a file, a change that rolled back with --wait)
  64  usage: a bad command line or file, or no tower, key or identity to use
  65  data: the tower refused what was sent as invalid
  69  unavailable: nothing listens at the tower's address, or the host is out of reach
  75  temporary: no answer in time (--timeout), or the tower's storage failed
  77  forbidden: the operator's grants do not allow it, or the tower refused the key
  79  not found: no such change, host, server... (in this tenant)
  80  conflict: it exists, but its state forbids the request";

#[derive(Debug, Parser)]
#[command(
    name = "vigie",
    version,
    about = "Vigie: a control tower for fleets of servers",
    after_long_help = EXIT_STATUS
)]
pub struct Cli {
    /// Log one JSON object per event on stderr.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print one JSON object per line instead of text (see the README's
    /// "JSON output"); accepted before or after any subcommand.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(flatten)]
    pub conn: conn::TopConn,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a tower from a setup file and supervise it until SIGTERM.
    Start(start::Args),
    /// Run the Escalator key-value daemon.
    Escalator(escalator::Args),
    /// Talk to an Escalator: create, get, put, delete, range, stats.
    Kv(kv::Args),
    /// Run the referee daemon (change requests' state machine and routing).
    Referee(referee::Args),
    /// Run a plug: the executor of one host, with the local driver.
    Plug(plug::Args),
    /// Run the majordomo: the front door for remote agents (CurveZMQ).
    Majordomo(majordomo::Args),
    /// Run an agent: a plug on a remote machine, connecting to a majordomo.
    Agent(majordomo::AgentArgs),
    /// Curve25519 keys: `keys gen --out FILE`.
    Keys(majordomo::KeysArgs),
    /// Run the metrics daemon: Prometheus metrics over HTTP.
    Metrics(metrics::Args),
    /// Run simulated hosts (noop driver) in one process, for benchmarks.
    Fleet(plug::FleetArgs),
    /// Run the provisioner: makes catalog servers hosts over SSH.
    Provisioner(provisioner::Args),
    /// Run the deploy daemon: runs the deploys operators start, in the tower.
    Deployd(deployd::Args),
    /// Run the web console (the launcher does), or `web login` to sign in.
    Web(web::Args),
    /// API tokens for scripts: `tokens create --expires 30d`, list, revoke.
    Tokens(web::TokensArgs),
    /// Submit a change request to the hosts a target matches.
    Submit(tower::SubmitArgs),
    /// Show a change, or the latest changes.
    Status(tower::StatusArgs),
    /// Follow changes live until they end.
    Watch(tower::WatchArgs),
    /// Show a host's queue, in-flight change first.
    Queue(tower::QueueArgs),
    /// Cancel a queued change.
    Cancel(tower::CancelArgs),
    /// Declare the host of a running change lost: the change ends abandoned.
    Abandon(lifecycle::AbandonArgs),
    /// Submit a finished change again, to the same host, as a new change.
    Retry(lifecycle::RetryArgs),
    /// Show the audit (or `audit verify` its hash chain).
    Audit(tower::AuditArgs),
    /// List hosts, or `hosts add ID` to register one.
    Hosts(tower::HostsArgs),
    /// The tower's own daemons: `tower status`.
    Tower(health::Args),
    /// A host's logs: its steps' whole output, or a service's stdout/stderr.
    Logs(observe::LogsArgs),
    /// List the tenant's operators, or `operators add NAME --key K --grant G`.
    Operators(operators::Args),
    /// Deploy an environment (environment.yml): `--plan` shows what would change.
    Deploy(deploy::DeployArgs),
    /// What the deployer deployed: `deployments list|show APP/ENV`.
    Deployments(deployments::DeploymentsArgs),
    /// The server catalog: `servers import FILE.csv`, sessions, list, show.
    Servers(servers::Args),
    /// IP pools: `ips pool add`, pools, allocate, release, list.
    Ips(ips::Args),
    /// The application catalog: `apps add FILE.yml`, list, show.
    Apps(apps::Args),
    /// Start a throwaway tower and show it working.
    Demo(demo::Args),
    /// Benchmarks (not tests): print figures and ratios.
    Bench(vigie_bench::Args),
    /// Print a shell completion script: `vigie completions bash`.
    Completions(completions::Args),
    /// Write man pages (vigie.1, vigie-submit.1, …) into a directory.
    Man(completions::ManArgs),
}

/// The connection options of a subcommand that talks to the tower.
fn conn_of(command: &mut Command) -> Option<&mut conn::Conn> {
    Some(match command {
        Command::Submit(a) => &mut a.conn,
        Command::Status(a) => &mut a.conn,
        Command::Watch(a) => &mut a.conn,
        Command::Queue(a) => &mut a.conn,
        Command::Cancel(a) => &mut a.conn,
        Command::Abandon(a) => &mut a.conn,
        Command::Retry(a) => &mut a.conn,
        Command::Audit(a) => &mut a.conn,
        Command::Hosts(a) => &mut a.conn,
        Command::Logs(a) => &mut a.conn,
        Command::Operators(a) => &mut a.conn,
        Command::Deploy(a) => &mut a.conn,
        Command::Deployments(a) => &mut a.conn,
        Command::Servers(a) => &mut a.conn,
        Command::Ips(a) => &mut a.conn,
        Command::Apps(a) => &mut a.conn,
        Command::Web(a) => &mut a.conn,
        Command::Tokens(a) => &mut a.conn,
        _ => return None,
    })
}

/// Connection options given before the subcommand go to it; before one
/// that does not talk to the tower they are a usage error, not ignored.
fn place_conn(cli: &mut Cli) -> anyhow::Result<()> {
    let top = std::mem::take(&mut cli.conn.0);
    match conn_of(&mut cli.command) {
        Some(conn) => conn.merge_under(top),
        None if top.is_empty() => {}
        None => {
            return Err(failure::Failure::error(
                failure::Cause::Usage,
                "--tower, --tower-key, --identity, --config, --tenant and --timeout are for the commands that talk to the tower",
            ))
        }
    }
    Ok(())
}

pub fn run(mut cli: Cli) -> anyhow::Result<ExitCode> {
    place_conn(&mut cli)?;
    let format = out::Format::of(cli.json);
    match cli.command {
        Command::Start(a) => start::run(a, cli.log_json),
        Command::Escalator(a) => escalator::run(a),
        Command::Kv(a) => kv::run(a, format),
        Command::Referee(a) => referee::run(a),
        Command::Plug(a) => plug::run(a),
        Command::Fleet(a) => plug::fleet(a),
        Command::Metrics(a) => metrics::run(a),
        Command::Provisioner(a) => provisioner::run(a),
        Command::Deployd(a) => deployd::run(a),
        Command::Web(a) => web::run(a, format),
        Command::Tokens(a) => web::tokens(a, format),
        Command::Majordomo(a) => majordomo::run(a),
        Command::Agent(a) => majordomo::agent(a),
        Command::Keys(a) => majordomo::keys(a),
        Command::Submit(a) => tower::submit(a, format),
        Command::Status(a) => tower::status(a, format),
        Command::Watch(a) => tower::watch(a, format),
        Command::Queue(a) => tower::queue(a, format),
        Command::Cancel(a) => tower::cancel(a, format),
        Command::Abandon(a) => lifecycle::abandon(a, format),
        Command::Retry(a) => lifecycle::retry(a, format),
        Command::Audit(a) => tower::audit(a, format),
        Command::Hosts(a) => tower::hosts(a, format),
        Command::Tower(a) => health::run(a, format),
        Command::Logs(a) => observe::logs(a, format),
        Command::Operators(a) => operators::run(a, format),
        Command::Deploy(a) => deploy::deploy(a, format),
        Command::Deployments(a) => deployments::deployments(a, format),
        Command::Servers(a) => servers::run(a, format),
        Command::Ips(a) => ips::run(a, format),
        Command::Apps(a) => apps::run(a, format),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => vigie_bench::run(a),
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => completions::man(a),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use clap::CommandFactory;

    use super::{Cli, Command};

    /// Every subcommand and every argument says what it is for: `--help`,
    /// the man pages and the completions are made from these words.
    #[test]
    fn every_subcommand_and_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} <{id}>"));
                }
            }
            for sub in cmd.get_subcommands() {
                let sub_path = format!("{path} {}", sub.get_name());
                if sub.get_name() != "help" && sub.get_about().is_none() {
                    missing.push(sub_path.clone());
                }
                walk(sub, &sub_path, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "vigie", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:#?}");
    }

    /// `--json` is one flag of the whole command line: before the
    /// subcommand or after it, the same.
    #[test]
    fn json_is_accepted_before_or_after_any_subcommand() {
        for args in [
            vec!["vigie", "--json", "status"],
            vec!["vigie", "status", "--json"],
            vec!["vigie", "hosts", "pending", "--json"],
            vec!["vigie", "--json", "operators", "revoke", "bob"],
            vec!["vigie", "audit", "verify", "--json"],
        ] {
            let cli = Cli::try_parse_from(&args);
            assert!(cli.as_ref().is_ok_and(|c| c.json), "{args:?}: {cli:?}");
        }
    }

    /// `vigie --help` and `vigie(1)` list every exit code with its kind.
    #[test]
    fn the_exit_codes_are_documented() {
        for cause in super::failure::Cause::ALL {
            let line = format!(
                "\n  {:<3} {}:",
                cause.code(),
                cause.word().replace('_', " ")
            );
            assert!(super::EXIT_STATUS.contains(&line), "{line:?}");
        }
    }

    /// One key in 85 starts with '-': it is a value, not a flag.
    #[test]
    fn keys_starting_with_a_dash_are_values() {
        let key = "-T1ee2#J>cL=O[(WqW?pR&8MN/jIZb(+SG%[6>%k";
        let cli = Cli::try_parse_from([
            "vigie",
            "operators",
            "add",
            "a",
            "--key",
            key,
            "--grant",
            "changes.read",
        ]);
        assert!(matches!(cli.map(|c| c.command), Ok(Command::Operators(_))));
        for args in [
            vec!["vigie", "hosts", "add", "h", "--key", key],
            vec!["vigie", "hosts", "accept", "h", "--key", key],
            vec!["vigie", "status", "--tower-key", key],
            vec!["vigie", "operators", "rotate-key", "a", "--key", key],
        ] {
            assert!(Cli::try_parse_from(&args).is_ok(), "{args:?}");
        }
    }
}
