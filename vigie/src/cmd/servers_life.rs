//! `vigie servers` after the import: `edit` (a row's fields, read with
//! `vigie_catalog::edit`, every bad value listed before anything is
//! sent), `remove`, `sessions undo`, `export` (the import's CSV on
//! stdout, fetched page by page so nothing is cut) and what `provision`
//! prints: each server's result, once.

use std::process::ExitCode;

use clap::Subcommand;
use vigie_client::calls::catalog;
use vigie_wire::catalog::{ProvisionOutcome, ProvisionResult};

use super::conn::Conn;
use super::escape::field;
use super::json_catalog::{AllocationJson, ServerJson};
use super::out;

#[derive(Debug, Subcommand)]
pub enum SessionAction {
    /// Remove the servers an import session added, only while none of
    /// them was provisioned (all still new: never a host nor tried);
    /// the session stays listed, marked undone. Audited.
    Undo {
        /// The session's id (`vigie servers sessions`).
        id: u64,
        /// Also release the addresses its servers hold (refused otherwise).
        #[arg(long)]
        force: bool,
    },
}

pub fn edit(conn: &Conn, name: String, set: &[String], json: bool) -> anyhow::Result<ExitCode> {
    let edit = match vigie_catalog::edit::parse_edit(set) {
        Ok(e) => e,
        Err(errors) => {
            let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
            out::esay!(
                "vigie servers edit: {} error(s), nothing changed:\n{}",
                errors.len(),
                lines.join("\n")
            );
            return Ok(ExitCode::from(crate::runtime::EXIT_CONFIG));
        }
    };
    let v = conn.client()?.ask(catalog::Edit { name, edit })?;
    for s in &v {
        if json {
            out::json(&ServerJson::from(s))?;
        } else {
            out::say!("{}: edited", field(&s.spec.name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn removed(answer: catalog::Removed, json: bool) -> anyhow::Result<ExitCode> {
    let catalog::Removed { servers, released } = answer;
    if json {
        let released: Vec<AllocationJson> = released.iter().map(AllocationJson::from).collect();
        out::json(&serde_json::json!({ "removed": servers, "released": released }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for a in &released {
        out::say!(
            "released {} (pool {}, {})",
            a.address,
            field(&a.pool),
            a.owner
        );
    }
    out::say!("{} server(s) removed", servers.len());
    Ok(ExitCode::SUCCESS)
}

pub fn remove(
    conn: &Conn,
    names: Vec<String>,
    force: bool,
    json: bool,
) -> anyhow::Result<ExitCode> {
    removed(conn.client()?.ask(catalog::Remove { names, force })?, json)
}

pub fn session(conn: &Conn, action: SessionAction, json: bool) -> anyhow::Result<ExitCode> {
    match action {
        SessionAction::Undo { id, force } => {
            let undo = catalog::Undo { session: id, force };
            removed(conn.client()?.ask(undo)?, json)
        }
    }
}

/// The CSV `servers import` takes, page by page from the tower.
pub fn export(conn: &Conn, target: Option<String>) -> anyhow::Result<ExitCode> {
    let mut client = conn.client()?;
    let mut text = vigie_catalog::export::header();
    let mut after = None;
    loop {
        let c = catalog::Export {
            target: target.clone(),
            after: after.take(),
        };
        let catalog::Exported { servers, next } = client.ask(c)?;
        text.push_str(&vigie_catalog::export::rows(
            servers.iter().map(|s| &s.spec),
        ));
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    // Into a file or a pipe as it is (escaping would change the data);
    // on a terminal what a field may hold is shown, not obeyed.
    let text = text.trim_end_matches('\n');
    if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        out::line(text)?;
    } else {
        out::raw(text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What `servers provision` prints: each server once, with its result;
/// the exit status fails when one was refused (the others are queued).
pub fn provisioned(results: Vec<ProvisionResult>, json: bool) -> anyhow::Result<ExitCode> {
    let count = |f: fn(&ProvisionOutcome) -> bool| results.iter().filter(|r| f(&r.outcome)).count();
    let queued = count(|o| *o == ProvisionOutcome::Queued);
    let refused = count(|o| matches!(o, ProvisionOutcome::Refused { .. }));
    for r in &results {
        if json {
            out::json(&result_json(r))?;
        } else {
            out::say!("{:<20} {}", field(&r.name), said(&r.outcome));
        }
    }
    if !json {
        out::say!(
            "{queued} server(s) to provision, {} not: follow them with `vigie servers list`",
            results.len() - queued
        );
    }
    Ok(if refused > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn said(o: &ProvisionOutcome) -> String {
    match o {
        ProvisionOutcome::Queued => "queued".into(),
        ProvisionOutcome::AlreadyHost => "already a host".into(),
        ProvisionOutcome::AlreadyProvisioning => "already being provisioned".into(),
        ProvisionOutcome::Refused { reason } => format!("refused: {}", field(reason)),
    }
}

fn result_json(r: &ProvisionResult) -> serde_json::Value {
    let reason = match &r.outcome {
        ProvisionOutcome::Refused { reason } => Some(reason.as_str()),
        _ => None,
    };
    serde_json::json!({ "name": r.name, "outcome": r.outcome.word(), "reason": reason })
}
