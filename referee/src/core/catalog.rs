//! The tower's catalogs held by the referee: servers and their import
//! sessions, IP pools and their allocations, applications. The referee
//! is their only writer and keeps them in memory (loaded at start), so
//! two calls in one turn see each other's effects: an address is decided
//! once, an import is checked against everything already imported.
//! Every write goes through a method here that changes memory and adds
//! the store write to the turn together ([`Table`] for the records kept
//! one per key), so the two never differ; the use cases that also audit,
//! or read hosts, keys or operators, are in `handlers/`.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::ops::Bound;

use serde::{Deserialize, Serialize};
use vigie_catalog::servers::normal_address;
use vigie_wire::catalog::{
    Allocation, AppRecord, CatalogAnswer, GivenAddress, Owner, PoolSpec, PoolView, ServerRecord,
    ServerState, SessionRecord,
};
use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller, Labels};

use crate::core::codec::encode;
use crate::core::table::Table;
use crate::core::turn::Turn;

pub(crate) fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

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

/// (tenant, name, version)
pub type AppKey = (String, String, String);

type Ordered<K, V> = Table<K, V, BTreeMap<K, V>>;

#[derive(Debug)]
pub struct Catalog {
    servers: Ordered<String, ServerRecord>,
    sessions: Ordered<(String, u64), SessionRecord>,
    pools: BTreeMap<Named, PoolSpec>,
    /// Per pool, the addresses handed out.
    allocations: BTreeMap<Named, BTreeMap<IpAddr, Allocation>>,
    apps: Ordered<AppKey, AppRecord>,
    /// Provisioning requests by server name (kept after a failure).
    provisions: Table<String, ProvisionRecord>,
    /// Where tenants' SSH keys are (`ssh_keys`), from the referee's config.
    ssh_keys: Option<std::path::PathBuf>,
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
        let servers = r
            .servers
            .into_iter()
            .map(|s| (s.spec.name.clone(), s))
            .collect();
        let sessions = r
            .sessions
            .into_iter()
            .map(|s| ((s.tenant.clone(), s.id), s))
            .collect();
        let apps = r
            .apps
            .into_iter()
            .map(|a| {
                let key = (
                    a.tenant.clone(),
                    a.spec.name.clone(),
                    a.spec.version.clone(),
                );
                (key, a)
            })
            .collect();
        let provisions = r
            .provisions
            .into_iter()
            .map(|p| (p.name.clone(), p))
            .collect();
        let mut c = Catalog {
            servers: Table::loaded(servers, |n| server_key(n)),
            sessions: Table::loaded(sessions, |(t, id)| session_key(t, *id)),
            pools: BTreeMap::new(),
            allocations: BTreeMap::new(),
            apps: Table::loaded(apps, |(t, n, v)| app_key(t, n, v)),
            provisions: Table::loaded(provisions, |n| provision_key(n)),
            ssh_keys: None,
        };
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
        c
    }

    /// Where tenants' SSH keys are, if this referee gives them.
    pub fn ssh_keys(&self) -> Option<&std::path::Path> {
        self.ssh_keys.as_deref()
    }

    /// Where tenants' SSH keys are, from the referee's config.
    pub fn set_ssh_keys(&mut self, dir: Option<std::path::PathBuf>) {
        self.ssh_keys = dir;
    }
}

/// The servers and their import sessions.
impl Catalog {
    /// The server of that name, whatever its tenant.
    pub fn server_named(&self, name: &str) -> Option<&ServerRecord> {
        self.servers.get(name)
    }

    /// How many servers are `tenant`'s (a pass over them all).
    pub fn tenant_server_count(&self, tenant: &str) -> u64 {
        self.servers.values().filter(|s| s.tenant == tenant).count() as u64
    }

    /// How many servers the tower holds.
    pub fn server_count(&self) -> usize {
        self.servers.len()
    }

    /// Stores a server's record.
    pub fn put_server(&mut self, turn: &mut Turn, rec: ServerRecord) {
        self.servers.put(turn, rec.spec.name.clone(), rec);
    }

    /// Removes a server and its provisioning request, if any.
    pub fn remove_server(&mut self, turn: &mut Turn, name: &str) {
        self.servers.remove(turn, &name.to_owned());
        if self.provisions.contains_key(name) {
            self.provisions.remove(turn, &name.to_owned());
        }
    }

    /// The session id `tenant`'s next import gets.
    pub fn next_session(&self, tenant: &str) -> u64 {
        self.sessions
            .range((tenant.to_owned(), 0)..=(tenant.to_owned(), u64::MAX))
            .next_back()
            .map_or(1, |((_, id), _)| id + 1)
    }

    pub fn session(&self, tenant: &str, id: u64) -> Option<&SessionRecord> {
        self.sessions.get(&(tenant.to_owned(), id))
    }

    /// Stores an import session's record.
    pub fn put_session(&mut self, turn: &mut Turn, rec: SessionRecord) {
        self.sessions.put(turn, (rec.tenant.clone(), rec.id), rec);
    }

    pub fn sessions(&self, caller: &Caller) -> Vec<SessionRecord> {
        self.sessions
            .range((caller.tenant.clone(), 0)..=(caller.tenant.clone(), u64::MAX))
            .map(|(_, s)| s.clone())
            .collect()
    }

    /// The tenant's addresses already in the catalog: one machine is one
    /// server (another tenant's are not looked at, nor named: their
    /// import is accepted, and the first provisioning claims the address,
    /// see `provision.rs`).
    pub fn tenant_addresses(&self, tenant: &str) -> HashMap<IpAddr, &ServerRecord> {
        self.servers
            .values()
            .filter(|o| o.tenant == tenant)
            .map(|o| (normal_address(o.spec.address), o))
            .collect()
    }

    /// Every server, by name.
    pub fn all_servers(&self) -> impl Iterator<Item = &ServerRecord> {
        self.servers.values()
    }

    /// The servers named after `after` (all with `None`), by name.
    pub fn servers_after(&self, after: Option<&str>) -> impl Iterator<Item = &ServerRecord> {
        let start = match after {
            Some(a) => Bound::Excluded(a.to_owned()),
            None => Bound::Unbounded,
        };
        self.servers
            .range::<String, _>((start, Bound::Unbounded))
            .map(|(_, s)| s)
    }

    /// Every tenant's servers waiting to be provisioned.
    pub fn provisioning(&self) -> Vec<ServerRecord> {
        self.servers
            .values()
            .filter(|s| s.state == ServerState::Provisioning)
            .cloned()
            .collect()
    }

    /// The addresses servers of any tenant hold, and which servers: a
    /// host (the first successful provisioning claimed the machine) or
    /// one being provisioned.
    pub fn claimed_addresses(&self) -> HashMap<IpAddr, Vec<&str>> {
        let mut claimed: HashMap<IpAddr, Vec<&str>> = HashMap::new();
        for o in self.servers.values() {
            if matches!(o.state, ServerState::Host | ServerState::Provisioning) {
                claimed
                    .entry(normal_address(o.spec.address))
                    .or_default()
                    .push(&o.spec.name);
            }
        }
        claimed
    }

    /// Whether a host other than `name` has its address.
    pub fn address_hosted_by_other(&self, name: &str, address: IpAddr) -> bool {
        self.servers.values().any(|o| {
            o.spec.name != name
                && o.state == ServerState::Host
                && normal_address(o.spec.address) == address
        })
    }

    /// The provisioning request kept for server `name`.
    pub fn provision(&self, name: &str) -> Option<&ProvisionRecord> {
        self.provisions.get(name)
    }

    /// Stores a provisioning request.
    pub fn put_provision(&mut self, turn: &mut Turn, rec: ProvisionRecord) {
        self.provisions.put(turn, rec.name.clone(), rec);
    }

    /// Drops a provisioning request (its server enrolled).
    pub fn remove_provision(&mut self, turn: &mut Turn, name: &str) {
        self.provisions.remove(turn, &name.to_owned());
    }
}

/// IP pools and their allocations.
impl Catalog {
    pub fn has_pool(&self, tenant: &str, name: &str) -> bool {
        self.pools
            .contains_key(&(tenant.to_owned(), name.to_owned()))
    }

    /// Stores a new pool, with no address handed out.
    pub fn add_pool(&mut self, turn: &mut Turn, tenant: &str, spec: PoolSpec) {
        turn.put(
            pool_key(tenant, &spec.name),
            encode(&(tenant.to_owned(), spec.clone())),
        );
        let key = (tenant.to_owned(), spec.name.clone());
        self.allocations.entry(key.clone()).or_default();
        self.pools.insert(key, spec);
    }

    pub fn tenant_pools<'a>(&'a self, tenant: &'a str) -> impl Iterator<Item = &'a PoolSpec> + 'a {
        self.pools
            .iter()
            .filter(move |((t, _), _)| t == tenant)
            .map(|(_, p)| p)
    }

    pub fn pool_view(&self, caller: &Caller, spec: &PoolSpec) -> PoolView {
        let allocated = self
            .allocations
            .get(&(caller.tenant.clone(), spec.name.clone()))
            .map_or(0, |a| a.len() as u64);
        PoolView {
            spec: spec.clone(),
            tenant: caller.tenant.clone(),
            usable: vigie_catalog::pools::usable(spec),
            allocated,
        }
    }

    pub fn pools(&self, caller: &Caller) -> Vec<PoolView> {
        self.tenant_pools(&caller.tenant)
            .map(|p| self.pool_view(caller, p))
            .collect()
    }

    pub fn pool(&self, caller: &Caller, name: &str) -> Result<PoolSpec, ApiFault> {
        self.pools
            .get(&(caller.tenant.clone(), name.to_owned()))
            .cloned()
            .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no pool {name}")))
    }

    /// The addresses of `tenant`'s `pool` handed out.
    pub fn taken(&self, tenant: &str, pool: &str) -> BTreeSet<IpAddr> {
        self.allocations
            .get(&(tenant.to_owned(), pool.to_owned()))
            .map(|t| t.keys().copied().collect())
            .unwrap_or_default()
    }

    /// The allocations of `tenant`'s `pool`, by address.
    pub fn pool_allocations(&self, tenant: &str, pool: &str) -> Vec<Allocation> {
        self.allocations
            .get(&(tenant.to_owned(), pool.to_owned()))
            .map(|t| t.values().cloned().collect())
            .unwrap_or_default()
    }

    /// How many addresses `tenant` holds over all its pools.
    pub fn allocated(&self, tenant: &str) -> u64 {
        self.allocations
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|(_, table)| table.len() as u64)
            .sum()
    }

    /// Stores an address handed out of `tenant`'s pool `a.pool`.
    pub fn put_allocation(&mut self, turn: &mut Turn, tenant: &str, a: Allocation) {
        turn.put(
            ip_key(tenant, &a.pool, &a.address),
            encode(&(tenant.to_owned(), a.clone())),
        );
        self.allocations
            .entry((tenant.to_owned(), a.pool.clone()))
            .or_default()
            .insert(a.address, a);
    }

    /// Gives an address of `tenant`'s `pool` back.
    pub fn remove_allocation(
        &mut self,
        turn: &mut Turn,
        tenant: &str,
        pool: &str,
        address: &IpAddr,
    ) -> Option<Allocation> {
        turn.delete(ip_key(tenant, pool, address));
        self.allocations
            .get_mut(&(tenant.to_owned(), pool.to_owned()))
            .and_then(|t| t.remove(address))
    }

    /// The addresses of `pool` held by server `name`.
    pub fn held_by(&self, tenant: &str, pool: &str, name: &str) -> Vec<IpAddr> {
        let owner = Owner::Server(name.to_owned());
        self.allocations
            .get(&(tenant.to_owned(), pool.to_owned()))
            .map(|t| {
                t.values()
                    .filter(|a| a.owner == owner)
                    .map(|a| a.address)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The tenant's allocations owned by one of `names`, with their pool.
    pub fn held_addresses(
        &self,
        tenant: &str,
        names: &BTreeSet<String>,
    ) -> Vec<(String, Allocation)> {
        self.allocations
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|((_, pool), table)| table.values().map(move |a| (pool.clone(), a)))
            .filter(|(_, a)| matches!(&a.owner, Owner::Server(n) if names.contains(n)))
            .map(|(p, a)| (p, a.clone()))
            .collect()
    }

    /// Every address a pool of `tenant` gave server `name`, with the
    /// pool's prefix length and gateway: what provisioning puts on the
    /// server.
    pub fn given_addresses(&self, tenant: &str, name: &str) -> Vec<GivenAddress> {
        let owner = Owner::Server(name.to_owned());
        self.allocations
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .filter_map(|(key, table)| Some((key, self.pools.get(key)?, table)))
            .flat_map(|((_, pool), spec, table)| {
                table
                    .values()
                    .filter(|a| a.owner == owner)
                    .map(|a| GivenAddress {
                        pool: pool.clone(),
                        address: a.address,
                        prefix: spec.cidr.prefix_len(),
                        gateway: spec.gateway,
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The labels server `name`'s host is registered with: its catalog
    /// labels, and `address=` the first address a pool gave it, unless
    /// they say one.
    pub fn labels_with_address(&self, tenant: &str, name: &str, labels: &Labels) -> Labels {
        let mut labels = labels.clone();
        if labels.contains_key("address") {
            return labels;
        }
        let owner = Owner::Server(name.to_owned());
        let given = self
            .allocations
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .flat_map(|(_, table)| table.values())
            .find(|a| a.owner == owner);
        if let Some(a) = given {
            labels.insert("address".into(), a.address.to_string());
        }
        labels
    }
}

/// Applications.
impl Catalog {
    pub fn app(&self, key: &AppKey) -> Option<&AppRecord> {
        self.apps.get(key)
    }

    /// Stores a new version of an application.
    pub fn put_app(&mut self, turn: &mut Turn, rec: AppRecord) {
        let key = (
            rec.tenant.clone(),
            rec.spec.name.clone(),
            rec.spec.version.clone(),
        );
        self.apps.put(turn, key, rec);
    }

    /// Removes one version of an application.
    pub fn remove_app(&mut self, turn: &mut Turn, key: &AppKey) -> Option<AppRecord> {
        self.apps.remove(turn, key)
    }

    /// The tenant's applications (every version), or one application's.
    pub fn apps(&self, caller: &Caller, name: Option<&str>) -> Vec<AppRecord> {
        self.apps
            .iter()
            .filter(|((t, n, _), _)| *t == caller.tenant && name.is_none_or(|x| x == n))
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// Every version of one application of the tenant.
    pub fn app_versions(&self, caller: &Caller, name: &str) -> Result<CatalogAnswer, ApiFault> {
        let v = self.apps(caller, Some(name));
        if v.is_empty() {
            return Err(fault(
                ApiFaultKind::NotFound,
                format!("no application {name}"),
            ));
        }
        Ok(CatalogAnswer::Apps(v))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn server(name: &str) -> ServerRecord {
        ServerRecord {
            spec: vigie_wire::catalog::ServerSpec {
                name: name.into(),
                address: "192.0.2.1".parse().unwrap(),
                ssh_port: 22,
                ssh_user: "root".into(),
                provider: "p".into(),
                cpu: 1,
                ram_gb: 1,
                disk_gb: 1,
                labels: Labels::new(),
                host_key: None,
            },
            tenant: "acme".into(),
            session: 1,
            state: ServerState::Failed { reason: "x".into() },
            added_ms: 0,
            fresh_key: false,
        }
    }

    #[test]
    fn a_removed_server_takes_its_provisioning_request_with_it_in_memory_and_store() {
        let mut c = Catalog::from_records(CatalogRecords::default());
        let mut turn = Turn::started();
        c.put_server(&mut turn, server("a"));
        c.put_provision(
            &mut turn,
            ProvisionRecord {
                name: "a".into(),
                operator: "ops".into(),
                at_ms: 0,
                init: None,
                home: None,
            },
        );
        let mut turn = Turn::started();
        c.remove_server(&mut turn, "a");
        assert!(c.server_named("a").is_none() && c.provision("a").is_none());
        assert_eq!(
            turn.writes,
            vec![(server_key("a"), None), (provision_key("a"), None)]
        );
    }
}
