//! The catalog calls' entry point and the shares that bound what a
//! tenant may hold in the catalogs (see `catalog` for their state).

use vigie_wire::catalog::{CatalogAnswer, CatalogCall};
use vigie_wire::tower::{ApiAnswer, ApiFault, Caller};

use crate::core::fetched::Fetched;
use crate::core::servers::fault;
use crate::core::state::Tower;
use crate::core::turn::Turn;

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
        let theirs = if all + rows <= self.limits().servers_per_tenant {
            all
        } else {
            self.catalog
                .servers
                .values()
                .filter(|s| s.tenant == tenant)
                .count() as u64
        };
        let l = &self.limits();
        let over = |held: u64, most: u64, whose: String, field: &str| {
            fault(
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
        let all = self.hosts().len() as u64;
        // One pass over the hosts per new id, skipped while the whole
        // tower is below a tenant's share.
        let theirs = if all < self.limits().hosts_per_tenant {
            all
        } else {
            self.hosts()
                .values()
                .filter(|h| h.rec.tenant == tenant)
                .count() as u64
        };
        let l = &self.limits();
        let refuse = |held: u64, most: u64, whose: String, field: &str| {
            fault(
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
        db: &Fetched,
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
            // Answered with the deployments read for it (`api.rs`).
            CatalogCall::AppRemove { .. } => return Err(crate::core::app_deploys::read_first()),
            CatalogCall::App { name } => self.app_versions(caller, &name)?,
            CatalogCall::Provision {
                names,
                target,
                init,
                pool,
            } => {
                // Accepted, the servers would wait `provisioning` in silence.
                self.health()
                    .needs_daemon("provisioner", "provisioning", turn.now_ms)?;
                self.provision(caller, (names, target), init, pool, turn)?
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
            CatalogCall::SshKey => self.ssh_key(caller, db)?,
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
