//! The command line: one subcommand per daemon, plus the operator's client.

mod bench;
mod demo;
mod escalator;
mod kv;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The default Escalator endpoint of a tower on this machine.
pub const DEFAULT_ESCALATOR: &str = "tcp://127.0.0.1:7100";

#[derive(Debug, Parser)]
#[command(
    name = "vigie",
    version,
    about = "Vigie: a control tower for fleets of servers"
)]
pub struct Cli {
    /// Log one JSON object per event on stderr.
    #[arg(long, global = true)]
    pub log_json: bool,
    /// More logging (-v debug, -vv trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the Escalator key-value daemon.
    Escalator(escalator::Args),
    /// Talk to an Escalator: create, get, put, delete, range, stats.
    Kv(kv::Args),
    /// Start a throwaway tower and show it working.
    Demo(demo::Args),
    /// Benchmarks (not tests): print figures and ratios.
    Bench(bench::Args),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Escalator(a) => escalator::run(a),
        Command::Kv(a) => kv::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
    }
}
