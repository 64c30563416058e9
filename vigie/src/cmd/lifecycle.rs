//! The operator's ways out: `vigie abandon ID` (the host of an in-flight
//! change is lost for good) and `vigie retry ID` (a finished change's
//! program, submitted again as a new change).

use std::process::ExitCode;
use std::time::Duration;

use vigie_client::calls;
use vigie_wire::tower::ChangeState;

use super::conn::Conn;
use super::out::Format;
use super::tower::{follow, print_changes, print_waiting};

#[derive(Debug, clap::Args)]
pub struct AbandonArgs {
    /// The change in flight whose host is lost.
    #[arg(value_name = "ID")]
    id: String,
    /// Hold the host's queue: nothing more is sent to it until
    /// `vigie hosts release HOST` (by default the next change goes to it
    /// when it comes back).
    #[arg(long)]
    hold: bool,
    #[command(flatten)]
    pub(super) conn: Conn,
}

pub fn abandon(a: AbandonArgs, format: Format) -> anyhow::Result<ExitCode> {
    let call = calls::Abandon {
        change: a.id,
        hold: a.hold,
    };
    let views = a.conn.client()?.ask(call)?;
    print_changes(&views, format)?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// A finished change (succeeded, rolled back, cancelled, abandoned...).
    #[arg(value_name = "ID")]
    id: String,
    /// Follow the new change until it ends; exit non-zero unless it succeeded.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up waiting after this long (e.g. 30m); the
    /// change goes on. Waits until it ends when not given.
    #[arg(long, value_name = "DURATION", requires = "wait",
          value_parser = humantime::parse_duration)]
    wait_timeout: Option<Duration>,
    #[command(flatten)]
    pub(super) conn: Conn,
}

pub fn retry(a: RetryArgs, format: Format) -> anyhow::Result<ExitCode> {
    let mut tower = a.conn.client()?;
    let views = tower.ask(calls::Retry { change: a.id })?;
    print_changes(&views, format)?;
    print_waiting(&views, format)?;
    if !a.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let done = follow(format, &mut tower, &ids, a.wait_timeout)?;
    let ok = done.iter().all(|v| v.state == ChangeState::Succeeded);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
