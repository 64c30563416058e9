//! `vigie tower status`: every daemon of the tower (escalator, referee,
//! majordomo, metrics, provisioner, each plug the caller may see) with its
//! state as the launcher last said, its restarts and its last exit.

use std::process::ExitCode;

use clap::Subcommand;
use serde::Serialize;
use vigie_client::calls;
use vigie_wire::lifecycle::{short_duration, DaemonHealth, DaemonState};

use super::conn::Conn;
use super::json::rfc3339;
use super::out::{self, Format, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: TowerCmd,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Debug, Subcommand)]
enum TowerCmd {
    /// Every daemon with its state (running, starting, backing off until
    /// when, stopped), restarts and last exit; needs `hosts.read` (a plug
    /// is shown only if its host is in the grant's scope).
    Status,
}

/// One daemon in `--json` (times RFC 3339, as everywhere).
#[derive(Debug, Serialize)]
struct DaemonJson<'a> {
    name: &'a str,
    /// running, starting, backing_off or stopped.
    state: &'static str,
    /// While backing off: when the launcher starts it again.
    next_try: Option<String>,
    /// Since when it is in `state`.
    since: String,
    restarts: u32,
    /// `exit 1`, `killed by SIGKILL`: its last exit while the tower ran.
    last_exit: Option<&'a str>,
    last_exit_at: Option<String>,
}

fn word(s: DaemonState) -> &'static str {
    match s {
        DaemonState::Starting => "starting",
        DaemonState::Running => "running",
        DaemonState::BackingOff { .. } => "backing_off",
        DaemonState::Stopped => "stopped",
    }
}

fn ago(now_ms: u64, at_ms: u64) -> String {
    format!("{} ago", short_duration(now_ms.saturating_sub(at_ms)))
}

fn state_text(d: &DaemonHealth, now_ms: u64) -> String {
    match d.state {
        DaemonState::BackingOff { until_ms } => format!(
            "backing off, next try in {}",
            short_duration(until_ms.saturating_sub(now_ms))
        ),
        s => word(s).to_owned(),
    }
}

pub fn run(a: Args, format: Format) -> anyhow::Result<ExitCode> {
    let TowerCmd::Status = a.cmd;
    let mut tower = a.conn.client()?;
    let health = tower.ask(calls::TowerStatus)?;
    if format == Format::Json {
        for d in &health.daemons {
            out::json(&DaemonJson {
                name: &d.name,
                state: word(d.state),
                next_try: match d.state {
                    DaemonState::BackingOff { until_ms } => Some(rfc3339(until_ms)),
                    _ => None,
                },
                since: rfc3339(d.since_ms),
                restarts: d.restarts,
                last_exit: d.last_exit.as_deref(),
                last_exit_at: d.last_exit_ms.map(rfc3339),
            })?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = vigie_referee::now_ms();
    let mut t = Table::new(&["DAEMON", "STATE", "SINCE", "RESTARTS", "LAST EXIT"]);
    for d in &health.daemons {
        let last = match (&d.last_exit, d.last_exit_ms) {
            (Some(e), Some(at)) => format!("{e} ({})", ago(now, at)),
            (Some(e), None) => e.clone(),
            _ => "-".into(),
        };
        t.row(vec![
            d.name.clone(),
            state_text(d, now),
            ago(now, d.since_ms),
            d.restarts.to_string(),
            last,
        ]);
    }
    t.print()?;
    Ok(ExitCode::SUCCESS)
}
