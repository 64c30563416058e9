//! The server catalog's life after an import: `Edit` (a row's fields,
//! checked as an import row is, against the tenant's other servers and
//! the caller's scope; the fields a host keeps refused while it is one or
//! is being provisioned, see `vigie_catalog::edit`), `Remove` (all or
//! none: never a host nor a server being provisioned; a server holding
//! addresses only with `force`, which releases them), `Undo` (an import
//! session's servers removed, only while none of them was provisioned —
//! a host, being provisioned, or a host once: its agent key was revoked —
//! the session record kept and marked undone, so session ids are never
//! reused) and `Export` (pages of servers by name, for a CSV that imports
//! again). Every write is in the turn's batch with its audit record;
//! a refused call writes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use vigie_catalog::edit;
use vigie_wire::catalog::{Allocation, CatalogAnswer, Owner, ServerEdit, ServerState};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::catalog::{fault, Catalog};
use crate::core::catalog_log::CatalogLog;
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::{Log, Turn};

/// Most problems or names one answer or audit record lists.
const LISTED: usize = 20;

/// `names` (at most [`LISTED`]), then how many more.
fn listed<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let all: Vec<&str> = names.into_iter().collect();
    let more = all.len().saturating_sub(LISTED);
    let mut text = all[..all.len().min(LISTED)].join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    text
}

fn refusal(kind: ApiFaultKind, head: String, mut problems: Vec<String>) -> ApiFault {
    let n = problems.len();
    problems.truncate(LISTED);
    let more = if n > LISTED {
        format!("\n  … and {} more", n - LISTED)
    } else {
        String::new()
    };
    fault(kind, format!("{head}:\n  {}{more}", problems.join("\n  ")))
}

pub fn server_edit(
    core: &mut Core,
    caller: &Caller,
    name: &str,
    e: ServerEdit,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    let mut s = super::servers::server(core.catalog(), caller, name)?.clone();
    let new = edit::apply(&s.spec, &e);
    let changes = edit::changes(&s.spec, &new);
    if changes.is_empty() {
        return Ok(CatalogAnswer::Servers(vec![s]));
    }
    let fields: Vec<&str> = changes.iter().map(|(f, _, _)| *f).collect();
    let blocked = edit::blocked(&s.state, &fields);
    if !blocked.is_empty() {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "{name} is {}: its {} stay(s) as the host was provisioned with \
                 (a host's labels: `vigie hosts label`; its machine, SSH access or host \
                 key: `vigie hosts remove {name}` first); nothing changed",
                s.state.word(),
                blocked.join(", ")
            ),
        ));
    }
    check_edited(core, caller, name, &s.spec, &new)?;
    if !Visible::of(caller).host(&caller.tenant, name, &new.labels) {
        return Err(fault(
            ApiFaultKind::Forbidden,
            format!(
                "operator {} may not give {name} these labels: it would be outside \
                 the scope of servers.admin; nothing changed",
                caller.operator
            ),
        ));
    }
    s.spec = new;
    core.catalog_mut().put_server(turn, s.clone());
    let said: Vec<String> = changes
        .iter()
        .map(|(f, a, b)| format!("{f} {a:?} → {b:?}"))
        .collect();
    core.audit_host(
        turn,
        caller,
        name,
        AuditAction::ServerEdited,
        format!("server {name}: {}", said.join("; ")),
    );
    turn.logs.push(Log::Catalog(CatalogLog::ServerEdited {
        tenant: caller.tenant.clone(),
        server: name.to_owned(),
        fields: fields.join(","),
    }));
    Ok(CatalogAnswer::Servers(vec![s]))
}

/// An edited row checked as an import row is, and its address
/// against the tenant's other servers.
fn check_edited(
    core: &Core,
    caller: &Caller,
    name: &str,
    old: &vigie_wire::catalog::ServerSpec,
    new: &vigie_wire::catalog::ServerSpec,
) -> Result<(), ApiFault> {
    let mut problems: Vec<String> = vigie_catalog::servers::check_server(new)
        .into_iter()
        .map(|(c, m)| format!("{c}: {m}"))
        .collect();
    if new.address != old.address {
        if let Some(o) = core
            .catalog()
            .tenant_addresses(&caller.tenant)
            .get(&new.address)
            .filter(|o| o.spec.name != name)
        {
            problems.push(format!(
                "address: {} is already server {:?}'s (session {})",
                new.address, o.spec.name, o.session
            ));
        }
    }
    if !problems.is_empty() {
        return Err(refusal(
            ApiFaultKind::Invalid,
            format!("{name}: nothing changed"),
            problems,
        ));
    }
    Ok(())
}

pub fn servers_remove(
    core: &mut Core,
    caller: &Caller,
    names: Vec<String>,
    force: bool,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    let names: BTreeSet<String> = names.into_iter().collect();
    if names.is_empty() || names.len() > vigie_catalog::servers::MAX_ROWS {
        return Err(fault(
            ApiFaultKind::Invalid,
            format!(
                "name 1 to {} servers to remove",
                vigie_catalog::servers::MAX_ROWS
            ),
        ));
    }
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| super::servers::server(core.catalog(), caller, n).is_err())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(fault(
            ApiFaultKind::NotFound,
            format!(
                "no server(s) {} in the catalog; nothing removed",
                listed(unknown)
            ),
        ));
    }
    let released = remove_servers(core, caller, &names, force, turn)?;
    core.audit_host(
        turn,
        caller,
        "",
        AuditAction::ServersRemoved,
        format!(
            "{} server(s) removed{}: {}",
            names.len(),
            if released.is_empty() {
                String::new()
            } else {
                format!(" with {} address(es) released", released.len())
            },
            listed(names.iter().map(String::as_str))
        ),
    );
    Ok(CatalogAnswer::Removed {
        servers: names.into_iter().collect(),
        released,
    })
}

/// Removes `names` (known, visible) whole or not at all: refused
/// while one is a host or being provisioned, or holds addresses
/// without `force`. Returns the addresses released (each pool's
/// release audited).
fn remove_servers(
    core: &mut Core,
    caller: &Caller,
    names: &BTreeSet<String>,
    force: bool,
    turn: &mut Turn,
) -> Result<Vec<Allocation>, ApiFault> {
    let held = core.catalog().held_addresses(&caller.tenant, names);
    let mut problems = Vec::new();
    for n in names {
        let state = core.catalog().server_named(n).map(|s| &s.state);
        match state.unwrap_or(&ServerState::New) {
            ServerState::Host => problems.push(format!(
                "{n} is a host: `vigie hosts remove {n}` first (the server is then new again)"
            )),
            ServerState::Provisioning => problems.push(format!(
                "{n} is being provisioned: remove it once that ends"
            )),
            ServerState::New | ServerState::Failed { .. } => {}
        }
        let mine: Vec<String> = held
            .iter()
            .filter(|(_, a)| a.owner == Owner::Server(n.clone()))
            .map(|(_, a)| format!("{} {}", a.pool, a.address))
            .collect();
        if !force && !mine.is_empty() {
            problems.push(format!(
                "{n} holds {} address(es) ({}): release them or give --force",
                mine.len(),
                listed(mine.iter().map(String::as_str))
            ));
        }
    }
    if !problems.is_empty() {
        return Err(refusal(
            ApiFaultKind::Conflict,
            format!(
                "{} server(s) cannot be removed, nothing removed",
                problems.len()
            ),
            problems,
        ));
    }
    for n in names {
        core.catalog_mut().remove_server(turn, n);
    }
    let released = release_held(core, caller, held, turn);
    turn.logs.push(Log::Catalog(CatalogLog::ServersRemoved {
        tenant: caller.tenant.clone(),
        servers: names.len(),
        released: released.len(),
    }));
    Ok(released)
}

/// Releases `held`, one audit record per pool.
fn release_held(
    core: &mut Core,
    caller: &Caller,
    held: Vec<(String, Allocation)>,
    turn: &mut Turn,
) -> Vec<Allocation> {
    let mut by_pool: BTreeMap<String, Vec<Allocation>> = BTreeMap::new();
    for (pool, a) in held {
        by_pool.entry(pool).or_default().push(a);
    }
    let mut out = Vec::new();
    for (pool, gone) in by_pool {
        let mut addresses: Vec<IpAddr> = Vec::new();
        for a in gone {
            core.catalog_mut()
                .remove_allocation(turn, &caller.tenant, &pool, &a.address);
            addresses.push(a.address);
            out.push(a);
        }
        addresses.sort();
        core.audit_host(
            turn,
            caller,
            "",
            AuditAction::IpsReleased,
            format!(
                "pool {pool}: {} (their servers removed)",
                super::ips::ranges(&addresses)
            ),
        );
    }
    out
}

pub fn session_undo(
    core: &mut Core,
    caller: &Caller,
    id: u64,
    force: bool,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    let Some(mut session) = core.catalog().session(&caller.tenant, id).cloned() else {
        return Err(fault(ApiFaultKind::NotFound, format!("no session {id}")));
    };
    if session.undone_ms.is_some() {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!("session {id} was undone already"),
        ));
    }
    let names = undoable(core.catalog(), caller, &session)?;
    let released = remove_servers(core, caller, &names, force, turn)?;
    session.undone_ms = Some(turn.now_ms);
    core.catalog_mut().put_session(turn, session.clone());
    core.audit_host(
        turn,
        caller,
        "",
        AuditAction::SessionUndone,
        format!(
            "session {id} ({}, sha256 {}) undone: {} server(s) removed{}",
            session.file,
            session.digest,
            names.len(),
            if released.is_empty() {
                String::new()
            } else {
                format!(", {} address(es) released", released.len())
            }
        ),
    );
    Ok(CatalogAnswer::Removed {
        servers: names.into_iter().collect(),
        released,
    })
}

/// The servers `session` may take back with it: those still in the
/// catalog as it added them, all in the caller's scope and none
/// provisioned.
fn undoable(
    catalog: &Catalog,
    caller: &Caller,
    session: &vigie_wire::catalog::SessionRecord,
) -> Result<BTreeSet<String>, ApiFault> {
    let id = session.id;
    // Its servers still in the catalog as it added them (one removed
    // since, or removed and imported again by another session, is not
    // this session's any more).
    let names: BTreeSet<String> = session
        .servers
        .iter()
        .filter(|n| {
            catalog
                .server_named(n)
                .is_some_and(|s| s.tenant == caller.tenant && s.session == id)
        })
        .cloned()
        .collect();
    let vis = Visible::of(caller);
    let outside = names
        .iter()
        .filter_map(|n| catalog.server_named(n))
        .filter(|s| !vis.host(&s.tenant, &s.spec.name, &s.spec.labels))
        .count();
    if outside > 0 {
        return Err(fault(
            ApiFaultKind::Forbidden,
            format!(
                "{outside} server(s) of session {id} are outside operator {}'s scope of \
                 servers.admin; nothing removed",
                caller.operator
            ),
        ));
    }
    let provisioned: Vec<String> = names
        .iter()
        .filter_map(|n| {
            let s = catalog.server_named(n)?;
            // A failed attempt may have reached the machine (its host
            // key pinned, the agent's binary and key installed).
            let was = match s.state {
                ServerState::Host => Some("a host"),
                ServerState::Provisioning => Some("being provisioned"),
                ServerState::Failed { .. } => Some("provisioning failed"),
                ServerState::New if s.fresh_key => Some("a host once"),
                ServerState::New => None,
            };
            was.map(|w| format!("{n} ({w})"))
        })
        .collect();
    if !provisioned.is_empty() {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "session {id} cannot be undone: {} of its servers were provisioned: {}; \
                 nothing removed (`vigie servers remove` takes the others one by one)",
                provisioned.len(),
                listed(provisioned.iter().map(String::as_str))
            ),
        ));
    }
    Ok(names)
}
