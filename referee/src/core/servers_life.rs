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
use std::ops::Bound;

use vigie_catalog::edit;
use vigie_changes::Selector;
use vigie_wire::catalog::{Allocation, CatalogAnswer, Owner, ServerEdit, ServerState, EXPORT_PAGE};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::catalog::{ip_key, provision_key, server_key, session_key};
use crate::core::catalog_log::CatalogLog;
use crate::core::codec::encode;
use crate::core::scope::Visible;
use crate::core::servers::fault;
use crate::core::tower::Tower;
use crate::core::turn::{Log, Turn};
use crate::shell::clock::now_ms;

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

impl Tower {
    pub(crate) fn server_edit(
        &mut self,
        caller: &Caller,
        name: &str,
        e: ServerEdit,
        turn: &mut Turn,
    ) -> Result<CatalogAnswer, ApiFault> {
        let mut s = self.server(caller, name)?.clone();
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
        self.check_edited(caller, name, &s.spec, &new)?;
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
        turn.put(server_key(name), encode(&s));
        self.catalog.servers.insert(name.to_owned(), s.clone());
        let said: Vec<String> = changes
            .iter()
            .map(|(f, a, b)| format!("{f} {a:?} → {b:?}"))
            .collect();
        self.audit_host(
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
        &self,
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
            if let Some(o) = self
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

    pub(crate) fn servers_remove(
        &mut self,
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
            .filter(|n| self.server(caller, n).is_err())
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
        let released = self.remove_servers(caller, &names, force, turn)?;
        self.audit_host(
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
        &mut self,
        caller: &Caller,
        names: &BTreeSet<String>,
        force: bool,
        turn: &mut Turn,
    ) -> Result<Vec<Allocation>, ApiFault> {
        let held = self.held_addresses(&caller.tenant, names);
        let mut problems = Vec::new();
        for n in names {
            match self.catalog.servers[n].state {
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
            turn.delete(server_key(n));
            self.catalog.servers.remove(n);
            if self.catalog.provisions.remove(n).is_some() {
                turn.delete(provision_key(n));
            }
        }
        let released = self.release_held(caller, held, turn);
        turn.logs.push(Log::Catalog(CatalogLog::ServersRemoved {
            tenant: caller.tenant.clone(),
            servers: names.len(),
            released: released.len(),
        }));
        Ok(released)
    }

    /// The tenant's allocations owned by one of `names`, with their pool.
    fn held_addresses(&self, tenant: &str, names: &BTreeSet<String>) -> Vec<(String, Allocation)> {
        self.catalog
            .allocations
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|((_, pool), table)| table.values().map(move |a| (pool.clone(), a)))
            .filter(|(_, a)| matches!(&a.owner, Owner::Server(n) if names.contains(n)))
            .map(|(p, a)| (p, a.clone()))
            .collect()
    }

    /// Releases `held`, one audit record per pool.
    fn release_held(
        &mut self,
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
            let key = (caller.tenant.clone(), pool.clone());
            let mut addresses: Vec<IpAddr> = Vec::new();
            for a in gone {
                if let Some(table) = self.catalog.allocations.get_mut(&key) {
                    table.remove(&a.address);
                }
                turn.delete(ip_key(&caller.tenant, &pool, &a.address));
                addresses.push(a.address);
                out.push(a);
            }
            addresses.sort();
            self.audit_host(
                turn,
                caller,
                "",
                AuditAction::IpsReleased,
                format!(
                    "pool {pool}: {} (their servers removed)",
                    crate::core::ips::ranges(&addresses)
                ),
            );
        }
        out
    }

    pub(crate) fn session_undo(
        &mut self,
        caller: &Caller,
        id: u64,
        force: bool,
        turn: &mut Turn,
    ) -> Result<CatalogAnswer, ApiFault> {
        let key = (caller.tenant.clone(), id);
        let Some(mut session) = self.catalog.sessions.get(&key).cloned() else {
            return Err(fault(ApiFaultKind::NotFound, format!("no session {id}")));
        };
        if session.undone_ms.is_some() {
            return Err(fault(
                ApiFaultKind::Conflict,
                format!("session {id} was undone already"),
            ));
        }
        let names = self.undoable(caller, &session)?;
        let released = self.remove_servers(caller, &names, force, turn)?;
        session.undone_ms = Some(now_ms());
        turn.put(session_key(&caller.tenant, id), encode(&session));
        self.catalog.sessions.insert(key, session.clone());
        self.audit_host(
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
        &self,
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
                self.catalog
                    .servers
                    .get(n.as_str())
                    .is_some_and(|s| s.tenant == caller.tenant && s.session == id)
            })
            .cloned()
            .collect();
        let vis = Visible::of(caller);
        let outside = names
            .iter()
            .filter(|n| {
                let s = &self.catalog.servers[n.as_str()];
                !vis.host(&s.tenant, n, &s.spec.labels)
            })
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
                let s = &self.catalog.servers[n.as_str()];
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

    pub(crate) fn servers_export(
        &self,
        caller: &Caller,
        target: Option<&str>,
        after: Option<&str>,
    ) -> Result<CatalogAnswer, ApiFault> {
        let selector = target
            .map(Selector::parse)
            .transpose()
            .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
        let vis = Visible::of(caller);
        let start = match after {
            Some(a) => Bound::Excluded(a.to_owned()),
            None => Bound::Unbounded,
        };
        let mut page: Vec<_> = self
            .catalog
            .servers
            .range::<String, _>((start, Bound::Unbounded))
            .map(|(_, s)| s)
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
}
