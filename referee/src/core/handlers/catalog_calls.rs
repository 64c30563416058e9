//! The catalog calls' entry point: each call to its use case (see
//! `catalog` for their state).

use vigie_wire::catalog::{CatalogAnswer, CatalogCall};
use vigie_wire::tower::{ApiAnswer, ApiFault, Caller};

use super::{apps, enrol, ips, provision, servers, servers_life};
use crate::core::fetched::Fetched;
use crate::core::state::Core;
use crate::core::turn::Turn;

/// A catalog call, within the caller's tenant. Every check is made
/// before anything is written: a refused call leaves no trace.
pub fn catalog_call(
    core: &mut Core,
    caller: &Caller,
    call: CatalogCall,
    db: &Fetched,
    now: std::time::Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let catalog = core.catalog();
    let answer = match call {
        CatalogCall::Import {
            file,
            digest,
            rows,
            dry_run,
        } => servers::import(core, caller, file, digest, rows, dry_run, turn)?,
        CatalogCall::Sessions => CatalogAnswer::Sessions(catalog.sessions(caller)),
        CatalogCall::Servers { session, target } => CatalogAnswer::Servers(servers::servers(
            catalog,
            caller,
            session,
            target.as_deref(),
        )?),
        CatalogCall::Server { name } => {
            CatalogAnswer::Servers(vec![servers::server(catalog, caller, &name)?.clone()])
        }
        CatalogCall::PoolAdd { spec } => ips::pool_add(core, caller, spec, turn)?,
        CatalogCall::Pools => CatalogAnswer::Pools(catalog.pools(caller)),
        CatalogCall::Allocate { pool, owner, count } => {
            ips::allocate(core, caller, &pool, owner, count, turn)?
        }
        CatalogCall::Release {
            pool,
            address,
            owner,
        } => ips::release(core, caller, &pool, address, owner, turn)?,
        CatalogCall::Allocations { pool } => ips::allocations(catalog, caller, &pool)?,
        CatalogCall::AppAdd { spec } => apps::app_add(core, caller, spec, turn)?,
        CatalogCall::Apps => CatalogAnswer::Apps(catalog.apps(caller, None)),
        // Answered with the deployments read for it (`api.rs`).
        CatalogCall::AppRemove { .. } => return Err(crate::core::app_deploys::read_first()),
        CatalogCall::App { name } => catalog.app_versions(caller, &name)?,
        CatalogCall::Provision {
            names,
            target,
            init,
            pool,
        } => provision::provision(core, caller, (names, target), init, pool, turn)?,
        CatalogCall::Provisioning => enrol::provisioning(catalog, caller)?,
        CatalogCall::ServerAddresses { name } => enrol::server_addresses(catalog, caller, &name)?,
        CatalogCall::HostKeySeen { name, key } => {
            enrol::host_key_seen(core, caller, &name, key, turn)?
        }
        CatalogCall::Enrol { name, public } => {
            enrol::enrol(core, caller, &name, public, now, turn)?
        }
        CatalogCall::ProvisionFailed { name, reason } => {
            enrol::provision_failed(core, caller, &name, reason, turn)?
        }
        CatalogCall::Pin { name, host_key } => enrol::pin(core, caller, &name, host_key, turn)?,
        CatalogCall::SshKey => provision::ssh_key(catalog, caller, db)?,
        CatalogCall::Edit { name, edit } => {
            servers_life::server_edit(core, caller, &name, edit, turn)?
        }
        CatalogCall::Remove { names, force } => {
            servers_life::servers_remove(core, caller, names, force, turn)?
        }
        CatalogCall::Undo { session, force } => {
            servers_life::session_undo(core, caller, session, force, turn)?
        }
        CatalogCall::Export { target, after } => {
            servers::servers_export(catalog, caller, target.as_deref(), after.as_deref())?
        }
        CatalogCall::ImportCheck { rows } => servers::import_check(core, caller, &rows)?,
    };
    Ok(ApiAnswer::Catalog(answer))
}
