//! `vigie`: a thin entry point. Parses the command line, sets up tracing,
//! checks libzmq, and hands over to the subcommand. A failure exits with
//! its cause's code (`cmd::failure`), said on stderr, and with `--json`
//! also as an error object on stdout.

mod cmd;
mod runtime;

use std::process::ExitCode;

use clap::Parser;
use cmd::failure::{json_object, Cause};

fn main() -> ExitCode {
    let cli = match cmd::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            if matches!(
                e.kind(),
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion
            ) {
                return ExitCode::SUCCESS;
            }
            // The line did not parse: `--json` anywhere on it still asks for JSON.
            if std::env::args_os().any(|a| a == "--json") {
                let text = e.render().to_string();
                let first = text.lines().next().unwrap_or_default();
                let said = first.strip_prefix("error: ").unwrap_or(first);
                let _ = cmd::out::json(&json_object(Cause::Usage, said));
            }
            return ExitCode::from(runtime::EXIT_CONFIG);
        }
    };
    let json = cli.json;
    runtime::set_umask(matches!(
        cli.command,
        cmd::Command::Plug(_) | cmd::Command::Agent(_)
    ));
    runtime::die_with_parent();
    // A benchmark prints figures; its in-process servers' logs would drown them.
    let quiet = matches!(cli.command, cmd::Command::Bench(_));
    runtime::init_tracing(cli.log_json, cli.verbose, quiet);
    runtime::raise_fd_limit(&cli.command);
    if let Err(msg) = runtime::check_curve() {
        eprintln!("vigie: {msg}");
        return ExitCode::from(runtime::EXIT_UNAVAILABLE);
    }
    match cmd::run(cli) {
        Ok(code) => code,
        // `vigie status | head`: the reader had what it wanted.
        Err(e) if cmd::out::is_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let cause = Cause::of(&e);
            let message = said_once(&e);
            // An error may quote the tower, a host or a file: shown, not obeyed.
            eprintln!("vigie: {}", cmd::escape::text(&message));
            if json {
                // `out::json` escapes what a terminal would obey.
                let _ = cmd::out::json(&json_object(cause, &message));
            }
            ExitCode::from(cause.code())
        }
    }
}

/// An error and its causes on one line, a cause that the message already
/// ends with said once (a wrapper that prints its source would otherwise
/// read "NotFound: x: NotFound: x").
fn said_once(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.ends_with(&part) || text.contains(&format!("{part}: ")) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::said_once;

    #[derive(Debug, thiserror::Error)]
    #[error("NotFound: no change c9")]
    struct Fault;

    #[derive(Debug, thiserror::Error)]
    enum Wrapper {
        #[error("{0}")]
        Refused(#[from] Fault),
    }

    #[test]
    fn a_cause_the_message_already_says_is_not_repeated() {
        let e = anyhow::Error::from(Wrapper::from(Fault));
        assert_eq!(
            format!("{e:#}"),
            "NotFound: no change c9: NotFound: no change c9"
        );
        assert_eq!(said_once(&e), "NotFound: no change c9");
        let e = anyhow::Error::from(Wrapper::from(Fault)).context("status c9");
        assert_eq!(said_once(&e), "status c9: NotFound: no change c9");
    }
}
