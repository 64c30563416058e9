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
//! - `provision/<name>`               → [`ProvisionRecord`] (see `provision`)

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use vigie_wire::catalog::{Allocation, AppRecord, PoolSpec, ServerRecord, SessionRecord};
use vigie_wire::change::ChangeSpec;

use crate::core::codec::decode;
use crate::error::RefereeError;
use crate::shell::store::Store;

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

pub fn provision_key(name: &str) -> Vec<u8> {
    format!("provision/{name}").into_bytes()
}

/// What a provisioning request asked for, kept until the server is a host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisionRecord {
    pub name: String,
    pub operator: String,
    pub at_ms: u64,
    /// Queued as the new host's first change.
    pub init: Option<ChangeSpec>,
    /// The tenant of the operator's own record (`Origin::Operator`);
    /// `None` when the tower asked. Its grants are checked again when the
    /// init change is queued.
    #[serde(default)]
    pub home: Option<String>,
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
    pub provisions: BTreeMap<String, ProvisionRecord>,
    /// Where tenants' SSH keys are (`ssh_keys`), from the referee's config.
    pub ssh_keys: Option<std::path::PathBuf>,
}

fn load_all<T: serde::de::DeserializeOwned>(
    db: &dyn Store,
    prefix: &str,
    mut f: impl FnMut(T),
) -> Result<(), RefereeError> {
    for e in db.scan(prefix.as_bytes(), None) {
        let (key, value) = e?;
        f(decode(&key, &value)?);
    }
    Ok(())
}

impl Catalog {
    pub fn load(db: &dyn Store) -> Result<Self, RefereeError> {
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
        load_all(db, "provision/", |r: ProvisionRecord| {
            c.provisions.insert(r.name.clone(), r);
        })?;
        Ok(c)
    }
}
