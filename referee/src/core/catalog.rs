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
use vigie_wire::tower::{ApiFault, ApiFaultKind};

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

/// The catalogs' records as a start read them (`shell/load.rs`).
#[derive(Debug, Default)]
pub struct CatalogRecords {
    pub servers: Vec<ServerRecord>,
    pub sessions: Vec<SessionRecord>,
    /// (tenant, pool)
    pub pools: Vec<(String, PoolSpec)>,
    /// (tenant, allocation)
    pub ips: Vec<(String, Allocation)>,
    pub apps: Vec<AppRecord>,
    pub provisions: Vec<ProvisionRecord>,
}

impl Catalog {
    /// The catalogs in memory, from what a start read.
    pub fn from_records(r: CatalogRecords) -> Self {
        let mut c = Catalog::default();
        for s in r.servers {
            c.servers.insert(s.spec.name.clone(), s);
        }
        for s in r.sessions {
            c.sessions.insert((s.tenant.clone(), s.id), s);
        }
        for (tenant, spec) in r.pools {
            c.allocations
                .entry((tenant.clone(), spec.name.clone()))
                .or_default();
            c.pools.insert((tenant, spec.name.clone()), spec);
        }
        for (tenant, a) in r.ips {
            c.allocations
                .entry((tenant, a.pool.clone()))
                .or_default()
                .insert(a.address, a);
        }
        for a in r.apps {
            let key = (
                a.tenant.clone(),
                a.spec.name.clone(),
                a.spec.version.clone(),
            );
            c.apps.insert(key, a);
        }
        for p in r.provisions {
            c.provisions.insert(p.name.clone(), p);
        }
        c
    }
}

impl Catalog {
    /// The catalog's text of `app/environment` in `version`, for a deploy
    /// of the tenant's (`DeployCall::StartVersion`, `app_deploys.rs`).
    pub fn app_environment(
        &self,
        tenant: &str,
        app: &str,
        environment: &str,
        version: &str,
    ) -> Result<String, ApiFault> {
        let key = (tenant.to_owned(), app.to_owned(), version.to_owned());
        let rec = self.apps.get(&key).ok_or_else(|| {
            ApiFault::new(
                ApiFaultKind::NotFound,
                format!("no version {version} of application {app} in the catalog (`vigie apps show {app}`)"),
            )
        })?;
        rec.spec
            .environments
            .get(environment)
            .cloned()
            .ok_or_else(|| {
                let known: Vec<&str> = rec.spec.environments.keys().map(String::as_str).collect();
                ApiFault::new(
                    ApiFaultKind::NotFound,
                    format!(
                        "version {version} of {app} has no environment {environment} (it has: {})",
                        if known.is_empty() {
                            "none".to_owned()
                        } else {
                            known.join(", ")
                        }
                    ),
                )
            })
    }
}
