//! The operator's ways out: `vigie abandon ID` (the host of an in-flight
//! change is lost for good) and `vigie retry ID` (a finished change's
//! program, submitted again as a new change).

use std::process::ExitCode;

use vigie_wire::tower::ApiCall;

use super::conn::Conn;
use super::tower::{follow, print_change, print_waiting};

#[derive(Debug, clap::Args)]
pub struct AbandonArgs {
    /// The change in flight whose host is lost.
    id: String,
    /// Hold the host's queue: nothing more is sent to it until
    /// `vigie hosts release HOST` (by default the next change goes to it
    /// when it comes back).
    #[arg(long)]
    hold: bool,
    #[command(flatten)]
    conn: Conn,
}

pub fn abandon(a: AbandonArgs) -> anyhow::Result<ExitCode> {
    let call = ApiCall::Abandon {
        change: a.id,
        hold: a.hold,
    };
    for v in a.conn.client()?.changes(call)? {
        print_change(&v, a.conn.json)?;
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, clap::Args)]
pub struct RetryArgs {
    /// A finished change (succeeded, rolled back, cancelled, abandoned...).
    id: String,
    /// Follow the new change until it ends; exit non-zero unless it succeeded.
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    conn: Conn,
}

pub fn retry(a: RetryArgs) -> anyhow::Result<ExitCode> {
    let mut client = a.conn.client()?;
    let views = client.changes(ApiCall::Retry { change: a.id })?;
    for v in &views {
        print_change(v, a.conn.json)?;
        print_waiting(v, a.conn.json);
    }
    if !a.wait {
        return Ok(ExitCode::SUCCESS);
    }
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let done = follow(a.conn.json, &mut client, &ids)?;
    let ok = done
        .iter()
        .all(|v| v.state == vigie_wire::tower::ChangeState::Succeeded);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
