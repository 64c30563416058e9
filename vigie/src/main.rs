//! `vigie`: a thin entry point. Parses the command line, sets up tracing,
//! checks libzmq, and hands over to the subcommand.

mod cmd;
mod runtime;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(runtime::EXIT_CONFIG),
            };
        }
    };
    runtime::set_umask(matches!(
        cli.command,
        cmd::Command::Plug(_) | cmd::Command::Agent(_)
    ));
    runtime::die_with_parent();
    // A benchmark prints figures; its in-process servers' logs would drown them.
    let quiet = matches!(cli.command, cmd::Command::Bench(_));
    runtime::init_tracing(cli.log_json, cli.verbose, quiet);
    if let Err(msg) = runtime::check_curve() {
        eprintln!("vigie: {msg}");
        return ExitCode::from(runtime::EXIT_UNAVAILABLE);
    }
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("vigie: {e:#}");
            ExitCode::FAILURE
        }
    }
}
