//! `vigie servers` after the import: `edit` (a row's fields, read with
//! `vigie_catalog::edit`, every bad value listed before anything is
//! sent), `remove`, `sessions undo`, `export` (the import's CSV on
//! stdout, fetched page by page so nothing is cut) and what `provision`
//! prints: each server's result, once.

use std::process::ExitCode;

use clap::Subcommand;
use vigie_wire::catalog::{CatalogAnswer, CatalogCall, ProvisionOutcome, ProvisionResult};
use vigie_wire::tower::{ApiAnswer, ApiCall};

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

fn call(conn: &Conn, c: CatalogCall) -> anyhow::Result<CatalogAnswer> {
    match conn.client()?.call(ApiCall::Catalog(c))? {
        ApiAnswer::Catalog(a) => Ok(a),
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
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
    let CatalogAnswer::Servers(v) = call(conn, CatalogCall::Edit { name, edit })? else {
        anyhow::bail!("unexpected answer");
    };
    for s in &v {
        if json {
            out::json(&ServerJson::from(s))?;
        } else {
            out::say!("{}: edited", field(&s.spec.name));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn removed(answer: CatalogAnswer, json: bool) -> anyhow::Result<ExitCode> {
    let CatalogAnswer::Removed { servers, released } = answer else {
        anyhow::bail!("unexpected answer");
    };
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
    removed(call(conn, CatalogCall::Remove { names, force })?, json)
}

pub fn session(conn: &Conn, action: SessionAction, json: bool) -> anyhow::Result<ExitCode> {
    match action {
        SessionAction::Undo { id, force } => {
            removed(call(conn, CatalogCall::Undo { session: id, force })?, json)
        }
    }
}

/// The CSV `servers import` takes, page by page from the tower.
pub fn export(conn: &Conn, target: Option<String>) -> anyhow::Result<ExitCode> {
    let mut client = conn.client()?;
    let mut text = vigie_catalog::export::header();
    let mut after = None;
    loop {
        let c = CatalogCall::Export {
            target: target.clone(),
            after: after.take(),
        };
        let CatalogAnswer::Exported { servers, next } = (match client.call(ApiCall::Catalog(c))? {
            ApiAnswer::Catalog(a) => a,
            other => anyhow::bail!("unexpected answer: {other:?}"),
        }) else {
            anyhow::bail!("unexpected answer");
        };
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
pub fn provisioned(answer: CatalogAnswer, json: bool) -> anyhow::Result<ExitCode> {
    let CatalogAnswer::Provisioned(results) = answer else {
        anyhow::bail!("unexpected answer");
    };
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
