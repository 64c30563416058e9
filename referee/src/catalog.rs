//! The tower's catalogs held by the referee: servers and their import
//! sessions, IP pools and their allocations, applications. The referee
//! is their only writer and keeps them in memory (loaded at start), so
//! two calls in one turn see each other's effects: an address is decided
//! once, an import is checked against everything already imported.
//!
//! Keys in the `tower` database:
//! - `server/<name>`                  → `ServerRecord` (names are unique in
//!   the tower: a server becomes the host of the same id, and hosts are
//!   routed by exact id; a name taken is refused without naming whose it
//!   is, and one tenant squats at most its share of names, below)
//! - `session/<tenant>/<id>`          → `SessionRecord`
//! - `pool/<tenant>/<name>`           → `PoolSpec`
//! - `ip/<tenant>/<pool>/<address>`   → `Allocation`
//! - `app/<tenant>/<name>/<version>`  → `AppRecord`
//! - `provision/<name>`               → `ProvisionRecord` (see `provision`)

use std::collections::BTreeMap;
use std::net::IpAddr;

use vigie_escalator::Database;
use vigie_wire::catalog::{
    Allocation, AppRecord, CatalogAnswer, CatalogCall, PoolSpec, ServerRecord, SessionRecord,
};
use vigie_wire::tower::{ApiAnswer, ApiFault, Caller};

use crate::error::RefereeError;
use crate::tower::{decode, Tower};
use crate::turn::Turn;

pub fn server_key(name: &str) -> Vec<u8> {
    format!("server/{name}").into_bytes()
}

pub fn session_key(tenant: &str, id: u64) -> Vec<u8> {
    format!("session/{tenant}/{id:020}").into_bytes()
}

pub fn pool_key(tenant: &str, name: &str) -> Vec<u8> {
    format!("pool/{tenant}/{name}").into_bytes()
}

pub fn ip_key(tenant: &str, pool: &str, address: &IpAddr) -> Vec<u8> {
    format!("ip/{tenant}/{pool}/{address}").into_bytes()
}

pub fn app_key(tenant: &str, name: &str, version: &str) -> Vec<u8> {
    format!("app/{tenant}/{name}/{version}").into_bytes()
}

/// (tenant, name)
pub type Named = (String, String);

#[derive(Debug, Default)]
pub struct Catalog {
    pub servers: BTreeMap<String, ServerRecord>,
    pub sessions: BTreeMap<(String, u64), SessionRecord>,
    pub pools: BTreeMap<Named, PoolSpec>,
    /// Per pool, the addresses handed out.
    pub allocations: BTreeMap<Named, BTreeMap<IpAddr, Allocation>>,
    /// (tenant, name, version)
    pub apps: BTreeMap<(String, String, String), AppRecord>,
    /// Provisioning requests by server name (kept after a failure).
    pub provisions: BTreeMap<String, crate::provision::ProvisionRecord>,
    /// Where tenants' SSH keys are (`ssh_keys`), from the referee's config.
    pub ssh_keys: Option<std::path::PathBuf>,
}

fn load_all<T: serde::de::DeserializeOwned>(
    db: &Database,
    prefix: &str,
    mut f: impl FnMut(T),
) -> Result<(), RefereeError> {
    let spec = vigie_escalator::RangeSpec {
        prefix: Some(prefix.as_bytes().to_vec()),
        ..Default::default()
    };
    for e in db.iter(spec) {
        let e = e?;
        f(decode(&e.key, &e.value.unwrap_or_default())?);
    }
    Ok(())
}

impl Catalog {
    pub fn load(db: &Database) -> Result<Self, RefereeError> {
        let mut c = Catalog::default();
        load_all(db, "server/", |r: ServerRecord| {
            c.servers.insert(r.spec.name.clone(), r);
        })?;
        load_all(db, "session/", |r: SessionRecord| {
            c.sessions.insert((r.tenant.clone(), r.id), r);
        })?;
        let mut pools = Vec::new();
        load_all(db, "pool/", |r: (String, PoolSpec)| pools.push(r))?;
        for (tenant, spec) in pools {
            c.allocations
                .entry((tenant.clone(), spec.name.clone()))
                .or_default();
            c.pools.insert((tenant, spec.name.clone()), spec);
        }
        let mut ips = Vec::new();
        load_all(db, "ip/", |r: (String, Allocation)| ips.push(r))?;
        for (tenant, a) in ips {
            c.allocations
                .entry((tenant, a.pool.clone()))
                .or_default()
                .insert(a.address, a);
        }
        load_all(db, "app/", |r: AppRecord| {
            c.apps.insert(
                (
                    r.tenant.clone(),
                    r.spec.name.clone(),
                    r.spec.version.clone(),
                ),
                r,
            );
        })?;
        load_all(db, "provision/", |r: crate::provision::ProvisionRecord| {
            c.provisions.insert(r.name.clone(), r);
        })?;
        Ok(c)
    }
}

/// Lifecycle events of the catalogs (stable names).
#[derive(Debug, Clone)]
pub enum CatalogLog {
    ServersImported {
        tenant: String,
        session: u64,
        servers: u64,
    },
    PoolAdded {
        tenant: String,
        pool: String,
    },
    IpsAllocated {
        tenant: String,
        pool: String,
        count: usize,
    },
    IpsReleased {
        tenant: String,
        pool: String,
        count: usize,
    },
    AppAdded {
        tenant: String,
        app: String,
        version: String,
    },
    ServerProvisioning {
        tenant: String,
        server: String,
    },
    HostKeyPinned {
        tenant: String,
        server: String,
    },
    ServerEnrolled {
        tenant: String,
        server: String,
        /// The init change queued first ("" without one).
        change: String,
    },
    ProvisionFailed {
        tenant: String,
        server: String,
        reason: String,
    },
    HostKeySet {
        tenant: String,
        server: String,
    },
    ServerEdited {
        tenant: String,
        server: String,
        /// The fields changed, comma-separated.
        fields: String,
    },
    ServersRemoved {
        tenant: String,
        servers: usize,
        released: usize,
    },
}

impl CatalogLog {
    pub fn emit(&self) {
        use tracing::info;
        match self {
            CatalogLog::ServersImported {
                tenant,
                session,
                servers,
            } => info!(event = "servers_imported", tenant, session, servers),
            CatalogLog::PoolAdded { tenant, pool } => info!(event = "pool_added", tenant, pool),
            CatalogLog::IpsAllocated {
                tenant,
                pool,
                count,
            } => info!(event = "ips_allocated", tenant, pool, count),
            CatalogLog::IpsReleased {
                tenant,
                pool,
                count,
            } => info!(event = "ips_released", tenant, pool, count),
            CatalogLog::AppAdded {
                tenant,
                app,
                version,
            } => info!(event = "app_added", tenant, app, version),
            CatalogLog::ServerProvisioning { tenant, server } => {
                info!(event = "server_provisioning", tenant, server)
            }
            CatalogLog::HostKeyPinned { tenant, server } => {
                info!(event = "host_key_pinned", tenant, server)
            }
            CatalogLog::ServerEnrolled {
                tenant,
                server,
                change,
            } => info!(event = "server_enrolled", tenant, server, change),
            CatalogLog::ProvisionFailed {
                tenant,
                server,
                reason,
            } => tracing::warn!(event = "provision_failed", tenant, server, reason),
            CatalogLog::HostKeySet { tenant, server } => {
                info!(event = "host_key_set", tenant, server)
            }
            CatalogLog::ServerEdited {
                tenant,
                server,
                fields,
            } => info!(event = "server_edited", tenant, server, fields),
            CatalogLog::ServersRemoved {
                tenant,
                servers,
                released,
            } => info!(event = "servers_removed", tenant, servers, released),
        }
    }
}

impl Tower {
    /// Whether `rows` more servers fit `tenant`'s share and the tower's
    /// (the setup's `limits:`): checked before anything is written, so an
    /// import past it is refused whole. The share also bounds the names a
    /// tenant can squat (names are tower-wide: they are host ids).
    pub(crate) fn check_servers_share(
        &self,
        tenant: &str,
        file: &str,
        rows: usize,
    ) -> Result<(), ApiFault> {
        let rows = rows as u64;
        let all = self.catalog.servers.len() as u64;
        let theirs = if all + rows <= self.limits.servers_per_tenant {
            all
        } else {
            self.catalog
                .servers
                .values()
                .filter(|s| s.tenant == tenant)
                .count() as u64
        };
        let l = &self.limits;
        let over = |held: u64, most: u64, whose: String, field: &str| {
            crate::servers::fault(
                vigie_wire::tower::ApiFaultKind::Conflict,
                format!(
                    "{file}: {rows} row(s) would bring {whose} to {} servers, more than \
                     {most} (limits.{field}): nothing imported",
                    held + rows
                ),
            )
        };
        if theirs + rows > l.servers_per_tenant {
            return Err(over(
                theirs,
                l.servers_per_tenant,
                format!("tenant {tenant}"),
                "servers_per_tenant",
            ));
        }
        if all + rows > l.servers {
            return Err(over(all, l.servers, "the tower".into(), "servers"));
        }
        Ok(())
    }

    /// Whether one more host fits `tenant`'s share and the tower's: host
    /// ids are tower-wide (orders are routed by exact id), so this bounds
    /// the ids one tenant can take from the others too.
    pub(crate) fn check_hosts_share(&self, tenant: &str) -> Result<(), ApiFault> {
        let all = self.hosts.len() as u64;
        // One pass over the hosts per new id, skipped while the whole
        // tower is below a tenant's share.
        let theirs = if all < self.limits.hosts_per_tenant {
            all
        } else {
            self.hosts
                .values()
                .filter(|h| h.rec.tenant == tenant)
                .count() as u64
        };
        let l = &self.limits;
        let refuse = |held: u64, most: u64, whose: String, field: &str| {
            crate::servers::fault(
                vigie_wire::tower::ApiFaultKind::Conflict,
                format!(
                    "{whose} has {held} hosts, at most {most} (limits.{field}): not registered"
                ),
            )
        };
        if theirs >= l.hosts_per_tenant {
            return Err(refuse(
                theirs,
                l.hosts_per_tenant,
                format!("tenant {tenant}"),
                "hosts_per_tenant",
            ));
        }
        if all >= l.hosts {
            return Err(refuse(all, l.hosts, "the tower".into(), "hosts"));
        }
        Ok(())
    }

    /// A catalog call, within the caller's tenant. Every check is made
    /// before anything is written: a refused call leaves no trace.
    pub fn catalog_call(
        &mut self,
        caller: &Caller,
        call: CatalogCall,
        now: std::time::Instant,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        let answer = match call {
            CatalogCall::Import {
                file,
                digest,
                rows,
                dry_run,
            } => self.import(caller, file, digest, rows, dry_run, turn)?,
            CatalogCall::Sessions => CatalogAnswer::Sessions(self.sessions(caller)),
            CatalogCall::Servers { session, target } => {
                CatalogAnswer::Servers(self.servers(caller, session, target.as_deref())?)
            }
            CatalogCall::Server { name } => {
                CatalogAnswer::Servers(vec![self.server(caller, &name)?.clone()])
            }
            CatalogCall::PoolAdd { spec } => self.pool_add(caller, spec, turn)?,
            CatalogCall::Pools => CatalogAnswer::Pools(self.pools(caller)),
            CatalogCall::Allocate { pool, owner, count } => {
                self.allocate(caller, &pool, owner, count, turn)?
            }
            CatalogCall::Release {
                pool,
                address,
                owner,
            } => self.release(caller, &pool, address, owner, turn)?,
            CatalogCall::Allocations { pool } => self.allocations(caller, &pool)?,
            CatalogCall::AppAdd { spec } => self.app_add(caller, spec, turn)?,
            CatalogCall::Apps => CatalogAnswer::Apps(self.apps(caller, None)),
            CatalogCall::App { name } => {
                let v = self.apps(caller, Some(&name));
                if v.is_empty() {
                    return Err(crate::servers::fault(
                        vigie_wire::tower::ApiFaultKind::NotFound,
                        format!("no application {name}"),
                    ));
                }
                CatalogAnswer::Apps(v)
            }
            CatalogCall::Provision {
                names,
                target,
                init,
            } => {
                // Accepted, the servers would wait `provisioning` in silence.
                self.needs_daemon("provisioner", "provisioning")?;
                self.provision(caller, names, target, init, turn)?
            }
            CatalogCall::Provisioning => self.provisioning(caller)?,
            CatalogCall::HostKeySeen { name, key } => {
                self.host_key_seen(caller, &name, key, turn)?
            }
            CatalogCall::Enrol { name, public } => self.enrol(caller, &name, public, now, turn)?,
            CatalogCall::ProvisionFailed { name, reason } => {
                self.provision_failed(caller, &name, reason, turn)?
            }
            CatalogCall::Pin { name, host_key } => self.pin(caller, &name, host_key, turn)?,
            CatalogCall::SshKey => self.ssh_key(caller)?,
            CatalogCall::Edit { name, edit } => self.server_edit(caller, &name, edit, turn)?,
            CatalogCall::Remove { names, force } => {
                self.servers_remove(caller, names, force, turn)?
            }
            CatalogCall::Undo { session, force } => {
                self.session_undo(caller, session, force, turn)?
            }
            CatalogCall::Export { target, after } => {
                self.servers_export(caller, target.as_deref(), after.as_deref())?
            }
            CatalogCall::ImportCheck { rows } => self.import_check(caller, &rows)?,
        };
        Ok(ApiAnswer::Catalog(answer))
    }
}
