//! The server catalog and its import sessions. An import is all or
//! nothing: every row is checked again here (the CLI checked the file),
//! against the other rows and against the whole tower's servers and hosts,
//! every problem is reported at once with its line and column, and only a
//! clean import is stored — its servers, its session record and its audit
//! record in the turn's one batch.

use std::collections::HashMap;
use std::net::IpAddr;

use vigie_catalog::servers::normal_address;
use vigie_catalog::RowError;
use vigie_changes::Selector;
use vigie_wire::catalog::{
    CatalogAnswer, ImportProblem, ImportRow, ServerRecord, ServerState, SessionRecord, EXPORT_PAGE,
};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::catalog::{fault, Catalog};
use crate::core::catalog_log::CatalogLog;
use crate::core::codec::encode;
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::{Log, Turn, WORK_MAX_BYTES};

pub fn import(
    core: &mut Core,
    caller: &Caller,
    file: String,
    digest: String,
    rows: Vec<ImportRow>,
    dry_run: bool,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    check_import(core, caller, &file, &digest, rows.len())?;
    // One spelling per machine (`::ffff:192.0.2.1` is 192.0.2.1), the
    // one stored and dialled: a client may send any.
    let mut rows = rows;
    for r in &mut rows {
        r.server.address = normal_address(r.server.address);
    }
    let problems = import_problems(core, caller, &rows);
    if !problems.is_empty() {
        let e = vigie_catalog::CatalogError::rows(&file, problems);
        return Err(fault(ApiFaultKind::Invalid, e.to_string()));
    }
    let count = rows.len() as u64;
    let id = core.catalog().next_session(&caller.tenant);
    let at_ms = turn.now_ms;
    let recs = import_records(caller, &file, (id, at_ms), rows)?;
    if dry_run {
        return Ok(CatalogAnswer::Imported {
            session: None,
            servers: count,
        });
    }
    let mut names = Vec::with_capacity(recs.len());
    for rec in recs {
        names.push(rec.spec.name.clone());
        core.catalog_mut().put_server(turn, rec);
    }
    let session = SessionRecord {
        id,
        tenant: caller.tenant.clone(),
        operator: caller.operator.clone(),
        at_ms,
        file: file.clone(),
        digest: digest.clone(),
        rows: count,
        servers: names,
        undone_ms: None,
    };
    core.catalog_mut().put_session(turn, session.clone());
    core.audit_host(
        turn,
        caller,
        "",
        AuditAction::ServersImported,
        format!("session {id}: {count} server(s) from {file} (sha256 {digest})"),
    );
    turn.logs.push(Log::Catalog(CatalogLog::ServersImported {
        tenant: caller.tenant.clone(),
        session: id,
        servers: count,
    }));
    Ok(CatalogAnswer::Imported {
        session: Some(session),
        servers: count,
    })
}

/// An import's size within bounds and the tenant's share, its file
/// named and its digest given.
fn check_import(
    core: &Core,
    caller: &Caller,
    file: &str,
    digest: &str,
    rows: usize,
) -> Result<(), ApiFault> {
    if rows == 0 {
        return Err(fault(ApiFaultKind::Invalid, format!("{file}: no rows")));
    }
    if rows > vigie_catalog::servers::MAX_ROWS {
        return Err(fault(
            ApiFaultKind::Invalid,
            format!(
                "{file}: {} rows, at most {} per import",
                rows,
                vigie_catalog::servers::MAX_ROWS
            ),
        ));
    }
    super::shares::check_servers_share(core, &caller.tenant, file, rows)?;
    let digest_ok = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
    if file.trim().is_empty() || file.len() > 255 || !digest_ok {
        return Err(fault(
            ApiFaultKind::Invalid,
            "an import names its file and carries its SHA-256 digest (64 hex)",
        ));
    }
    Ok(())
}

/// The servers of an import's session `id` made at `at_ms`, if they
/// fit the one batch they must be stored in.
fn import_records(
    caller: &Caller,
    file: &str,
    (id, at_ms): (u64, u64),
    rows: Vec<ImportRow>,
) -> Result<Vec<ServerRecord>, ApiFault> {
    let count = rows.len() as u64;
    // Their size decides before anything is written whether the import
    // fits the one batch it must be stored in.
    let recs: Vec<(ServerRecord, usize)> = rows
        .into_iter()
        .map(|r| {
            let rec = ServerRecord {
                spec: r.server,
                tenant: caller.tenant.clone(),
                session: id,
                state: ServerState::New,
                added_ms: at_ms,
                fresh_key: false,
            };
            let bytes = encode(&rec).len();
            (rec, bytes)
        })
        .collect();
    // Each record, its key, its name again in the session record, and
    // room for the session's and audit's own records.
    let bytes: usize = recs
        .iter()
        .map(|(r, b)| b + 2 * r.spec.name.len() + 16)
        .sum::<usize>()
        + 4096;
    if bytes > WORK_MAX_BYTES {
        return Err(fault(
            ApiFaultKind::Invalid,
            format!(
                "{file}: {count} rows would store {bytes} bytes, more than one batch \
                 takes ({WORK_MAX_BYTES}): nothing imported; split the file into \
                 several imports"
            ),
        ));
    }
    Ok(recs.into_iter().map(|(r, _)| r).collect())
}

/// Every problem of an import's rows the tower sees: against the other
/// rows and the whole tower (names, the tenant's addresses, the
/// caller's scope), besides each row's own checks.
pub fn import_problems(core: &Core, caller: &Caller, rows: &[ImportRow]) -> Vec<RowError> {
    let vis = Visible::of(caller);
    let mut problems = Vec::new();
    let mut seen: HashMap<&str, u64> = HashMap::new();
    let mut seen_at: HashMap<IpAddr, u64> = HashMap::new();
    let taken = core.catalog().tenant_addresses(&caller.tenant);
    for r in rows {
        let s = &r.server;
        let mut at = |c: &str, m: String| {
            problems.push(RowError {
                line: r.line,
                column: Some(c.to_owned()),
                message: m,
            })
        };
        for (c, m) in vigie_catalog::servers::check_server(s) {
            at(c, m);
        }
        if let Some(first) = seen.insert(&s.name, r.line) {
            at("name", format!("{:?} is already on line {first}", s.name));
        }
        if let Some(m) = name_taken(core, caller, &s.name) {
            at("name", m);
        }
        if let Some(first) = seen_at.insert(s.address, r.line) {
            at(
                "address",
                format!("{} is already on line {first}", s.address),
            );
        }
        if let Some(o) = taken.get(&s.address).filter(|o| o.spec.name != s.name) {
            at(
                "address",
                format!(
                    "{} is already server {:?}'s (session {})",
                    s.address, o.spec.name, o.session
                ),
            );
        }
        if !vis.host(&caller.tenant, &s.name, &s.labels) {
            at(
                "name",
                format!(
                    "operator {} may not import {:?} (outside the scope of servers.admin)",
                    caller.operator, s.name
                ),
            );
        }
    }
    problems
}

/// An import's rows checked by the tower, every problem answered (at
/// most `MAX_ERRORS` listed, all counted), nothing written.
pub fn import_check(
    core: &Core,
    caller: &Caller,
    rows: &[ImportRow],
) -> Result<CatalogAnswer, ApiFault> {
    let max = vigie_catalog::servers::MAX_ROWS;
    if rows.len() > max {
        return Err(fault(
            ApiFaultKind::Invalid,
            format!("{} rows, at most {max} per import", rows.len()),
        ));
    }
    let rows: Vec<ImportRow> = rows
        .iter()
        .cloned()
        .map(|mut r| {
            r.server.address = normal_address(r.server.address);
            r
        })
        .collect();
    let mut all = import_problems(core, caller, &rows);
    all.sort_by_key(|p| p.line);
    let total = all.len() as u64;
    let problems = all
        .into_iter()
        .take(vigie_catalog::servers::MAX_ERRORS)
        .map(|p| ImportProblem {
            line: p.line,
            column: p.column,
            message: p.message,
        })
        .collect();
    Ok(CatalogAnswer::ImportChecked { problems, total })
}

/// Why `name` cannot be a new server's: in the catalog, or another
/// tenant's host (names are unique in the tower; whose is not said).
fn name_taken(core: &Core, caller: &Caller, name: &str) -> Option<String> {
    if let Some(old) = core.catalog().server_named(name) {
        return Some(if old.tenant == caller.tenant {
            format!(
                "{name:?} is already in the catalog (session {})",
                old.session
            )
        } else {
            format!("{name:?} is in use in this tower: choose another name")
        });
    }
    core.hosts()
        .get(name)
        .is_some_and(|h| h.rec.tenant != caller.tenant)
        .then(|| format!("{name:?} is in use in this tower: choose another name"))
}

/// The servers the caller sees: its tenant's, inside its scope.
pub fn visible_servers<'a>(
    catalog: &'a Catalog,
    caller: &'a Caller,
) -> impl Iterator<Item = &'a ServerRecord> + 'a {
    let vis = Visible::of(caller);
    catalog
        .all_servers()
        .filter(move |s| vis.host(&s.tenant, &s.spec.name, &s.spec.labels))
}

pub fn servers(
    catalog: &Catalog,
    caller: &Caller,
    session: Option<u64>,
    target: Option<&str>,
) -> Result<Vec<ServerRecord>, ApiFault> {
    let selector = target
        .map(Selector::parse)
        .transpose()
        .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
    if let Some(id) = session {
        if catalog.session(&caller.tenant, id).is_none() {
            return Err(fault(ApiFaultKind::NotFound, format!("no session {id}")));
        }
    }
    Ok(visible_servers(catalog, caller)
        .filter(|s| session.is_none_or(|id| s.session == id))
        .filter(|s| {
            selector
                .as_ref()
                .is_none_or(|sel| sel.matches(&s.spec.name, &s.spec.labels))
        })
        .cloned()
        .collect())
}

pub fn server<'a>(
    catalog: &'a Catalog,
    caller: &Caller,
    name: &str,
) -> Result<&'a ServerRecord, ApiFault> {
    // By name, not a scan: a request names up to 20,000 servers.
    let vis = Visible::of(caller);
    catalog
        .server_named(name)
        .filter(|s| vis.host(&s.tenant, &s.spec.name, &s.spec.labels))
        .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no server {name}")))
}

/// A page of the servers the caller sees (and `target` matches), by
/// name after `after`, for a CSV that imports again.
pub fn servers_export(
    catalog: &Catalog,
    caller: &Caller,
    target: Option<&str>,
    after: Option<&str>,
) -> Result<CatalogAnswer, ApiFault> {
    let selector = target
        .map(Selector::parse)
        .transpose()
        .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
    let vis = Visible::of(caller);
    let mut page: Vec<_> = catalog
        .servers_after(after)
        .filter(|s| vis.host(&s.tenant, &s.spec.name, &s.spec.labels))
        .filter(|s| {
            selector
                .as_ref()
                .is_none_or(|sel| sel.matches(&s.spec.name, &s.spec.labels))
        })
        .take(EXPORT_PAGE + 1)
        .cloned()
        .collect();
    let next = if page.len() > EXPORT_PAGE {
        page.truncate(EXPORT_PAGE);
        page.last().map(|s| s.spec.name.clone())
    } else {
        None
    };
    Ok(CatalogAnswer::Exported {
        servers: page,
        next,
    })
}
