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
    CatalogAnswer, ImportProblem, ImportRow, ServerRecord, ServerState, SessionRecord,
};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::catalog::{server_key, session_key};
use crate::core::catalog_log::CatalogLog;
use crate::core::codec::encode;
use crate::core::scope::Visible;
use crate::core::state::Tower;
use crate::core::turn::{Log, Turn, WORK_MAX_BYTES};

pub(crate) fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

impl Tower {
    pub(crate) fn import(
        &mut self,
        caller: &Caller,
        file: String,
        digest: String,
        rows: Vec<ImportRow>,
        dry_run: bool,
        turn: &mut Turn,
    ) -> Result<CatalogAnswer, ApiFault> {
        self.check_import(caller, &file, &digest, rows.len())?;
        // One spelling per machine (`::ffff:192.0.2.1` is 192.0.2.1), the
        // one stored and dialled: a client may send any.
        let mut rows = rows;
        for r in &mut rows {
            r.server.address = normal_address(r.server.address);
        }
        let problems = self.import_problems(caller, &rows);
        if !problems.is_empty() {
            let e = vigie_catalog::CatalogError::rows(&file, problems);
            return Err(fault(ApiFaultKind::Invalid, e.to_string()));
        }
        let count = rows.len() as u64;
        let id = self
            .catalog
            .sessions
            .range((caller.tenant.clone(), 0)..=(caller.tenant.clone(), u64::MAX))
            .next_back()
            .map_or(1, |((_, id), _)| id + 1);
        let at_ms = turn.now_ms;
        let recs = self.import_records(caller, &file, (id, at_ms), rows)?;
        if dry_run {
            return Ok(CatalogAnswer::Imported {
                session: None,
                servers: count,
            });
        }
        let mut names = Vec::with_capacity(recs.len());
        for (rec, bytes) in recs {
            names.push(rec.spec.name.clone());
            turn.put(server_key(&rec.spec.name), bytes);
            self.catalog.servers.insert(rec.spec.name.clone(), rec);
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
        turn.put(session_key(&caller.tenant, id), encode(&session));
        self.catalog
            .sessions
            .insert((caller.tenant.clone(), id), session.clone());
        self.audit_host(
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
        &self,
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
        self.check_servers_share(&caller.tenant, file, rows)?;
        let digest_ok = digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit());
        if file.trim().is_empty() || file.len() > 255 || !digest_ok {
            return Err(fault(
                ApiFaultKind::Invalid,
                "an import names its file and carries its SHA-256 digest (64 hex)",
            ));
        }
        Ok(())
    }

    /// The servers of an import's session `id` made at `at_ms`, each
    /// encoded once, if they fit the one batch they must be stored in.
    fn import_records(
        &self,
        caller: &Caller,
        file: &str,
        (id, at_ms): (u64, u64),
        rows: Vec<ImportRow>,
    ) -> Result<Vec<(ServerRecord, Vec<u8>)>, ApiFault> {
        let count = rows.len() as u64;
        // Encoded once, here: the size decides before anything is written
        // whether the import fits the one batch it must be stored in.
        let recs: Vec<(ServerRecord, Vec<u8>)> = rows
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
                let bytes = encode(&rec);
                (rec, bytes)
            })
            .collect();
        // Each record, its key, its name again in the session record, and
        // room for the session's and audit's own records.
        let bytes: usize = recs
            .iter()
            .map(|(r, b)| b.len() + 2 * r.spec.name.len() + 16)
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
        Ok(recs)
    }

    /// Every problem of an import's rows the tower sees: against the other
    /// rows and the whole tower (names, the tenant's addresses, the
    /// caller's scope), besides each row's own checks.
    pub(crate) fn import_problems(&self, caller: &Caller, rows: &[ImportRow]) -> Vec<RowError> {
        let vis = Visible::of(caller);
        let mut problems = Vec::new();
        let mut seen: HashMap<&str, u64> = HashMap::new();
        let mut seen_at: HashMap<IpAddr, u64> = HashMap::new();
        let taken = self.tenant_addresses(&caller.tenant);
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
            if let Some(m) = self.name_taken(caller, &s.name) {
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
    pub(crate) fn import_check(
        &self,
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
        let mut all = self.import_problems(caller, &rows);
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
    fn name_taken(&self, caller: &Caller, name: &str) -> Option<String> {
        if let Some(old) = self.catalog.servers.get(name) {
            return Some(if old.tenant == caller.tenant {
                format!(
                    "{name:?} is already in the catalog (session {})",
                    old.session
                )
            } else {
                format!("{name:?} is in use in this tower: choose another name")
            });
        }
        self.hosts()
            .get(name)
            .is_some_and(|h| h.rec.tenant != caller.tenant)
            .then(|| format!("{name:?} is in use in this tower: choose another name"))
    }

    /// The tenant's addresses already in the catalog: one machine is one
    /// server (another tenant's are not looked at, nor named: their
    /// import is accepted, and the first provisioning claims the address,
    /// see `provision.rs`).
    pub(crate) fn tenant_addresses(&self, tenant: &str) -> HashMap<IpAddr, &ServerRecord> {
        self.catalog
            .servers
            .values()
            .filter(|o| o.tenant == tenant)
            .map(|o| (normal_address(o.spec.address), o))
            .collect()
    }

    pub(crate) fn sessions(&self, caller: &Caller) -> Vec<SessionRecord> {
        self.catalog
            .sessions
            .range((caller.tenant.clone(), 0)..=(caller.tenant.clone(), u64::MAX))
            .map(|(_, s)| s.clone())
            .collect()
    }

    pub(crate) fn visible_servers<'a>(
        &'a self,
        caller: &'a Caller,
    ) -> impl Iterator<Item = &'a ServerRecord> + 'a {
        let vis = Visible::of(caller);
        self.catalog
            .servers
            .values()
            .filter(move |s| vis.host(&s.tenant, &s.spec.name, &s.spec.labels))
    }

    pub(crate) fn servers(
        &self,
        caller: &Caller,
        session: Option<u64>,
        target: Option<&str>,
    ) -> Result<Vec<ServerRecord>, ApiFault> {
        let selector = target
            .map(Selector::parse)
            .transpose()
            .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
        if let Some(id) = session {
            if !self
                .catalog
                .sessions
                .contains_key(&(caller.tenant.clone(), id))
            {
                return Err(fault(ApiFaultKind::NotFound, format!("no session {id}")));
            }
        }
        Ok(self
            .visible_servers(caller)
            .filter(|s| session.is_none_or(|id| s.session == id))
            .filter(|s| {
                selector
                    .as_ref()
                    .is_none_or(|sel| sel.matches(&s.spec.name, &s.spec.labels))
            })
            .cloned()
            .collect())
    }

    pub(crate) fn server<'a>(
        &'a self,
        caller: &'a Caller,
        name: &str,
    ) -> Result<&'a ServerRecord, ApiFault> {
        // By name, not a scan: a request names up to 20,000 servers.
        let vis = Visible::of(caller);
        self.catalog
            .servers
            .get(name)
            .filter(|s| vis.host(&s.tenant, &s.spec.name, &s.spec.labels))
            .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no server {name}")))
    }
}
