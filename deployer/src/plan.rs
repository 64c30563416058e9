//! The decision of a deploy, without I/O: which components get a new
//! instance number (only those whose spec changed — seed 001's table),
//! what each host must do, which ports the new instances take, and, once
//! the hosts answered, what the inventory becomes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::DeployError;
use crate::inventory::{
    Component, ComponentState, DeployRecord, EnvRecord, HostState, Outcome, Placement,
};
use crate::names::{owned_names, Part};
use crate::ports::allocate;
use crate::spec::{Environment, Role, Service};

/// A component whose instance number changes in this deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bump {
    pub component: Component,
    /// `None`: the component is new.
    pub from: Option<u32>,
    pub to: u32,
}

/// One service on one host in this deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    pub name: Part,
    pub spec: Service,
    pub instance: u32,
    /// What runs there now, to be replaced (`None`: nothing yet).
    pub previous: Option<Placement>,
    /// The new replicas' ports (web services), fresh so that old and new
    /// run side by side until the proxy is switched.
    pub ports: Vec<u16>,
}

/// A host a deploy targets, with the address its instances and proxy
/// bind to: the host's `address` label, else loopback. Hosts that share a
/// network (local hosts of one machine) are told apart by address; two
/// hosts whose labels give the same address take ports apart
/// (`shared_ports`). Hosts without the label (each its own loopback) are
/// not compared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub id: String,
    pub address: Ipv4Addr,
    /// Its labels: what `overrides:` select on.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// The label that gives a host's address to the deployer.
pub const ADDRESS_LABEL: &str = "address";

impl Target {
    pub fn from_labels(id: &str, labels: &BTreeMap<String, String>) -> Result<Target, DeployError> {
        let address = match labels.get(ADDRESS_LABEL) {
            None => Ipv4Addr::LOCALHOST,
            Some(text) => text.parse().map_err(|_| DeployError::Address {
                host: id.to_string(),
                value: text.clone(),
            })?,
        };
        Ok(Target {
            id: id.to_string(),
            address,
            labels: labels.clone(),
        })
    }

    /// The address its `address` label gives (`None`: loopback, its own).
    pub fn known_address(&self) -> Option<Ipv4Addr> {
        self.labels
            .contains_key(ADDRESS_LABEL)
            .then_some(self.address)
    }
}

/// What one host does in this deploy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPlan {
    pub host: String,
    pub address: Ipv4Addr,
    pub proxy_port: u16,
    /// Services to roll; a service already at its instance is left alone.
    pub services: Vec<ServicePlan>,
    /// Services left alone, as they run (the proxy still routes to them).
    pub steady: BTreeMap<Part, Placement>,
    /// An earlier deploy left the host in maintenance, its replicas
    /// stopped: even with nothing new to roll, it has its steady services
    /// to start and its proxy to switch back (`compile_upgrade`).
    pub maintenance: bool,
    /// The `overrides:` that apply here, in words.
    pub overrides: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployPlan {
    pub number: u32,
    pub bumps: Vec<Bump>,
    /// Every targeted host, even those with nothing to do (empty services).
    pub hosts: Vec<HostPlan>,
    /// The components' states once the deploy is done.
    pub components: BTreeMap<Component, ComponentState>,
}

impl DeployPlan {
    /// Hosts that have something to do.
    pub fn busy_hosts(&self) -> impl Iterator<Item = &HostPlan> {
        self.hosts
            .iter()
            .filter(|h| !h.services.is_empty() || h.maintenance)
    }

    /// Whether this deploy makes a database the environment did not have:
    /// the first host makes it alone before the others rely on it, and a
    /// running environment's migrations are then pending.
    pub fn adds_database(&self) -> bool {
        self.bumps
            .iter()
            .any(|b| matches!(b.component, Component::Database(_)) && b.from.is_none())
    }
}

fn digest<T: Serialize>(value: &T) -> String {
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let sum = Sha256::digest(&bytes);
    sum.iter().map(|b| format!("{b:02x}")).collect()
}

/// Each component of `env` with the digest of its spec.
pub fn components_of(env: &Environment) -> BTreeMap<Component, String> {
    let mut out = BTreeMap::new();
    // A service's code is restarted when what it is told about its
    // databases and cache changes (their addresses), not when only their
    // own spec does (seed 001: deploy 4 bumps the cache alone).
    let connections = crate::spec::connections(env);
    for (name, service) in &env.services {
        let of_code = if connections.is_empty() {
            digest(service)
        } else {
            digest(&(service, &connections))
        };
        let overrides: Vec<_> = env.overrides.iter().filter(|o| o.concerns(name)).collect();
        let of_code = if overrides.is_empty() {
            of_code
        } else {
            digest(&(of_code, overrides))
        };
        out.insert(Component::Code(name.clone()), of_code);
    }
    for (name, db) in &env.databases {
        out.insert(Component::Database(name.clone()), digest(db));
    }
    if let Some(cache) = &env.cache {
        out.insert(Component::Cache, digest(cache));
    }
    out
}

/// Plans deploying `env` to `hosts` (the hosts its selector matched),
/// given what was deployed before (`previous`, `None` for a first deploy)
/// and the tenant's other environments (`others`): their names must not
/// overlap ours, and their ports on our hosts are taken.
pub fn plan(
    env: &Environment,
    previous: Option<&EnvRecord>,
    hosts: &[Target],
    others: &[EnvRecord],
) -> Result<DeployPlan, DeployError> {
    if hosts.is_empty() {
        return Err(DeployError::NoHosts {
            selector: env.hosts.clone(),
        });
    }
    check_collisions(env, others)?;

    let empty = EnvRecord::new(env.key.clone());
    let previous = previous.unwrap_or(&empty);
    let (bumps, components) = bump_components(env, previous);
    let mut host_plans: Vec<HostPlan> = Vec::with_capacity(hosts.len());
    for target in hosts {
        let taken = shared_ports(target, hosts, &host_plans, previous, others);
        host_plans.push(plan_host(
            env,
            target,
            previous,
            others,
            &components,
            &taken,
        )?);
    }
    check_shared_addresses(env, hosts, &host_plans)?;

    Ok(DeployPlan {
        number: u32::try_from(previous.history.len()).unwrap_or(u32::MAX - 1) + 1,
        bumps,
        hosts: host_plans,
        components,
    })
}

/// Each component's instance: kept while its digest is, else the next
/// number (a bump).
fn bump_components(
    env: &Environment,
    previous: &EnvRecord,
) -> (Vec<Bump>, BTreeMap<Component, ComponentState>) {
    let mut bumps = Vec::new();
    let mut components = BTreeMap::new();
    for (component, digest) in components_of(env) {
        let state = match previous.components.get(&component) {
            Some(old) if old.digest == digest => old.clone(),
            old => {
                let from = old.map(|o| o.instance);
                let to = from.map_or(1, |n| n + 1);
                bumps.push(Bump {
                    component: component.clone(),
                    from,
                    to,
                });
                ComponentState {
                    instance: to,
                    digest,
                }
            }
        };
        components.insert(component, state);
    }
    (bumps, components)
}

/// The other hosts at `target`'s address (its `address` label's), in
/// `hosts`: none for a host without the label.
fn peers<'a>(target: &'a Target, hosts: &'a [Target]) -> impl Iterator<Item = &'a Target> {
    let at = target.known_address();
    hosts
        .iter()
        .filter(move |h| at.is_some() && h.id != target.id && h.known_address() == at)
}

/// The ports the other hosts at `target`'s address hold or will: what
/// the inventory places on them (this environment's and the others'),
/// and what this plan gave those planned before it. Two hosts of one
/// machine share its ports: they must never be handed the same one.
fn shared_ports(
    target: &Target,
    hosts: &[Target],
    planned: &[HostPlan],
    previous: &EnvRecord,
    others: &[EnvRecord],
) -> BTreeSet<u16> {
    let mut taken = BTreeSet::new();
    for peer in peers(target, hosts) {
        taken.extend(others.iter().flat_map(|o| o.ports_on(&peer.id)));
        taken.extend(previous.ports_on(&peer.id));
        if let Some(p) = planned.iter().find(|p| p.host == peer.id) {
            taken.extend(listening(p));
        }
    }
    taken
}

/// Every port a host's plan has it listen on: its proxy, the new
/// replicas' and those of the services left alone.
fn listening(p: &HostPlan) -> BTreeSet<u16> {
    let new = p.services.iter().flat_map(|s| s.ports.iter().copied());
    let steady = p.steady.values().flat_map(|s| s.ports.iter().copied());
    new.chain(steady).chain([p.proxy_port]).collect()
}

/// Refuses a plan in which two hosts at one address would listen on one
/// port: only ports an earlier deploy placed (and this one keeps) can,
/// since new ones are taken apart.
fn check_shared_addresses(
    env: &Environment,
    hosts: &[Target],
    plans: &[HostPlan],
) -> Result<(), DeployError> {
    for (i, a) in plans.iter().enumerate() {
        let Some(target) = hosts.iter().find(|t| t.id == a.host) else {
            continue;
        };
        for b in plans[i + 1..]
            .iter()
            .filter(|b| peers(target, hosts).any(|p| p.id == b.host))
        {
            if let Some(port) = listening(a).intersection(&listening(b)).next() {
                return Err(DeployError::SharedAddress {
                    first: a.host.clone(),
                    second: b.host.clone(),
                    address: a.address,
                    port: *port,
                    environment: env.key.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// One host's part of the plan: its proxy port, and the services whose
/// instance changes there, with ports no other environment holds, nor
/// (`taken`) the other hosts at its address.
fn plan_host(
    env: &Environment,
    target: &Target,
    previous: &EnvRecord,
    others: &[EnvRecord],
    components: &BTreeMap<Component, ComponentState>,
    taken: &BTreeSet<u16>,
) -> Result<HostPlan, DeployError> {
    let host = &target.id;
    let current = previous.hosts.get(host);
    let mut used: BTreeSet<u16> = others.iter().flat_map(|o| o.ports_on(host)).collect();
    used.extend(previous.ports_on(host));
    used.extend(taken);
    let exhausted = |used: &BTreeSet<u16>, wanted: usize| DeployError::PortsExhausted {
        host: host.clone(),
        range: env.ports.to_string(),
        wanted,
        used: used.len(),
    };
    let proxy_port = match current.and_then(|c| c.proxy_port) {
        Some(port) => port,
        None => {
            let port = allocate(env.ports, &used, 1)
                .and_then(|p| p.first().copied())
                .ok_or_else(|| exhausted(&used, 1))?;
            used.insert(port);
            port
        }
    };
    let mut services = Vec::new();
    let mut steady = BTreeMap::new();
    let mut overrides = Vec::new();
    for (name, spec) in &env.services {
        let spec = service_on(env, name, spec, target, &mut overrides);
        let instance = components
            .get(&Component::Code(name.clone()))
            .map_or(1, |c| c.instance);
        let placed = current.and_then(|c| c.services.get(name));
        if let Some(placed) = placed.filter(|p| p.instance == instance) {
            steady.insert(name.clone(), placed.clone());
            continue;
        }
        let wanted = match spec.role {
            Role::Web => spec.replicas as usize,
            Role::Worker => 0,
        };
        let ports = allocate(env.ports, &used, wanted).ok_or_else(|| exhausted(&used, wanted))?;
        used.extend(&ports);
        services.push(ServicePlan {
            name: name.clone(),
            spec,
            instance,
            previous: placed.cloned(),
            ports,
        });
    }
    Ok(HostPlan {
        host: host.clone(),
        address: target.address,
        proxy_port,
        services,
        steady,
        maintenance: current.is_some_and(|c| c.maintenance),
        overrides,
    })
}

/// Service `name` as it runs on `target` (its `overrides:` applied, each
/// said in `said`).
fn service_on(
    env: &Environment,
    name: &Part,
    spec: &Service,
    target: &Target,
    said: &mut Vec<String>,
) -> Service {
    let mut spec = spec.clone();
    for o in env
        .overrides
        .iter()
        .filter(|o| o.applies(name, &target.id, &target.labels))
    {
        o.apply(&mut spec.replicas, &mut spec.env);
        said.push(format!("{name}: {}", o.describe()));
    }
    spec
}

fn check_collisions(env: &Environment, others: &[EnvRecord]) -> Result<(), DeployError> {
    let services: Vec<Part> = env.services.keys().cloned().collect();
    let databases: Vec<Part> = env.databases.keys().cloned().collect();
    let ours: BTreeSet<String> = owned_names(&env.key, &services, &databases)
        .into_iter()
        .collect();
    for other in others.iter().filter(|o| o.key != env.key) {
        let mut their_services = Vec::new();
        let mut their_dbs = Vec::new();
        for component in other.components.keys() {
            match component {
                Component::Code(s) => their_services.push(s.clone()),
                Component::Database(d) => their_dbs.push(d.clone()),
                Component::Cache => {}
            }
        }
        for name in owned_names(&other.key, &their_services, &their_dbs) {
            if ours.contains(&name) {
                return Err(DeployError::Collision {
                    name,
                    owner: other.key.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// What the inventory becomes once the hosts answered: `results` maps
/// each busy host to its change id and whether it succeeded. A host that
/// rolled back keeps what it ran; components move to their new instance
/// when at least one host runs it (another deploy then finishes the rest,
/// since a host whose placement lags behind is rolled again).
pub fn settle(
    previous: Option<&EnvRecord>,
    plan: &DeployPlan,
    env: &Environment,
    results: &BTreeMap<String, (String, bool)>,
) -> EnvRecord {
    let mut record = previous
        .cloned()
        .unwrap_or_else(|| EnvRecord::new(env.key.clone()));
    let any_ok = plan
        .busy_hosts()
        .any(|h| results.get(&h.host).is_some_and(|r| r.1));
    let all_ok = plan
        .busy_hosts()
        .all(|h| results.get(&h.host).is_some_and(|r| r.1));
    let nothing_to_do = plan.busy_hosts().next().is_none();
    if any_ok || nothing_to_do {
        record.components = plan.components.clone();
    }
    for host in &plan.hosts {
        // A host not attempted (an earlier host failed) keeps what it ran.
        let idle = host.services.is_empty() && !host.maintenance;
        let ok = idle || matches!(results.get(&host.host), Some((_, true)));
        if !ok {
            continue;
        }
        let state: &mut HostState = record.hosts.entry(host.host.clone()).or_default();
        state.proxy_port = Some(host.proxy_port);
        state.maintenance = false;
        state.paused = false;
        for service in &host.services {
            state.stopped.remove(&service.name);
            state.services.insert(
                service.name.clone(),
                Placement {
                    instance: service.instance,
                    replicas: service.spec.replicas,
                    ports: service.ports.clone(),
                },
            );
        }
    }
    record.history.push(DeployRecord {
        number: plan.number,
        bumped: if any_ok || nothing_to_do {
            plan.bumps
                .iter()
                .map(|b| (b.component.clone(), b.to))
                .collect()
        } else {
            Vec::new()
        },
        changes: results
            .iter()
            .map(|(h, (id, _))| (h.clone(), id.clone()))
            .collect(),
        outcome: if all_ok {
            Outcome::Succeeded
        } else {
            Outcome::RolledBack
        },
        maintenance: false,
        run: None,
        at_ms: None,
        operator: None,
        version: None,
        revisions: env
            .services
            .iter()
            .map(|(name, s)| (name.to_string(), s.revision.clone()))
            .collect(),
        verb: None,
    });
    record
}

/// The instance directories of a service a successful deploy keeps: the
/// new one, and the one it replaced (what a later rollback to it, or an
/// operator's look at what ran, needs). Every other one is removed.
pub fn kept_instances(service: &ServicePlan) -> BTreeSet<u32> {
    let mut keep: BTreeSet<u32> = [service.instance].into();
    keep.extend(service.previous.as_ref().map(|p| p.instance));
    keep
}
