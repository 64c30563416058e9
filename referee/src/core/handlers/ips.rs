//! IP pools and allocations. The referee is the single writer and decides
//! every allocation against its in-memory table, updated at once: two
//! requests, even in the same turn, never get the same address. An
//! allocation of N addresses is one decision, all or none; each is stored
//! with its audit record in the turn's batch.
//!
//! A tenant's share (the setup's `limits:`): so many addresses a call and
//! so many in all its pools. The audit record of an allocation or a
//! release names ranges, not every address: its size does not grow with
//! the count (each address is stored under its own key anyway).

use std::net::IpAddr;

use vigie_wire::catalog::{Allocation, CatalogAnswer, Owner, PoolSpec};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::catalog::{fault, Catalog};
use crate::core::catalog_log::CatalogLog;
use crate::core::state::Core;
use crate::core::turn::{Log, Turn};

/// Most ranges an audit record lists; the rest are counted.
const AUDIT_RANGES: usize = 16;

fn ordinal(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(*v4)),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

/// Sorted `addresses` as runs of consecutive ones (`a-b`), the first
/// [`AUDIT_RANGES`] named and the rest counted: a bounded text whatever
/// the count.
pub fn ranges(addresses: &[IpAddr]) -> String {
    let mut runs: Vec<(IpAddr, IpAddr, u128)> = Vec::new();
    for a in addresses {
        match runs.last_mut() {
            Some((_, last, n))
                if a.is_ipv4() == last.is_ipv4()
                    && ordinal(last).checked_add(1) == Some(ordinal(a)) =>
            {
                *last = *a;
                *n += 1;
            }
            _ => runs.push((*a, *a, 1)),
        }
    }
    let mut named: Vec<String> = runs
        .iter()
        .take(AUDIT_RANGES)
        .map(|(first, last, n)| {
            if *n == 1 {
                first.to_string()
            } else {
                format!("{first}-{last}")
            }
        })
        .collect();
    if runs.len() > AUDIT_RANGES {
        let more: u128 = runs[AUDIT_RANGES..].iter().map(|r| r.2).sum();
        named.push(format!(
            "and {more} more in {} range(s)",
            runs.len() - AUDIT_RANGES
        ));
    }
    format!("{} address(es): {}", addresses.len(), named.join(","))
}

pub fn pool_add(
    core: &mut Core,
    caller: &Caller,
    spec: PoolSpec,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    vigie_catalog::pools::check_pool(&spec).map_err(|m| fault(ApiFaultKind::Invalid, m))?;
    if core.catalog().has_pool(&caller.tenant, &spec.name) {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!("pool {} exists", spec.name),
        ));
    }
    if let Some(other) = core
        .catalog()
        .tenant_pools(&caller.tenant)
        .find(|p| vigie_catalog::pools::overlaps(&p.cidr, &spec.cidr))
    {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "{} overlaps pool {} ({})",
                spec.cidr, other.name, other.cidr
            ),
        ));
    }
    core.catalog_mut()
        .add_pool(turn, &caller.tenant, spec.clone());
    core.audit_host(
        turn,
        caller,
        "",
        AuditAction::PoolAdded,
        format!("pool {} {}", spec.name, spec.cidr),
    );
    turn.logs.push(Log::Catalog(CatalogLog::PoolAdded {
        tenant: caller.tenant.clone(),
        pool: spec.name.clone(),
    }));
    Ok(CatalogAnswer::Pools(vec![core
        .catalog()
        .pool_view(caller, &spec)]))
}

/// An owner must exist in the caller's tenant: a server of the catalog
/// or an application of the catalog.
fn check_owner(catalog: &Catalog, caller: &Caller, owner: &Owner) -> Result<(), ApiFault> {
    match owner {
        Owner::Server(n) => super::servers::server(catalog, caller, n).map(|_| ()),
        Owner::App(n) => {
            if catalog.apps(caller, Some(n)).is_empty() {
                Err(fault(ApiFaultKind::NotFound, format!("no application {n}")))
            } else {
                Ok(())
            }
        }
    }
}

pub fn allocate(
    core: &mut Core,
    caller: &Caller,
    pool: &str,
    owner: Owner,
    count: u32,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    let per_call = core.limits().allocate_per_call;
    if count == 0 || count > per_call {
        return Err(fault(
            ApiFaultKind::Invalid,
            format!(
                "count {count}: 1 to {per_call} per call (limits.allocate_per_call): \
                 nothing allocated"
            ),
        ));
    }
    let spec = core.catalog().pool(caller, pool)?;
    check_owner(core.catalog(), caller, &owner)?;
    check_allocated_share(core, &caller.tenant, count)?;
    let taken = core.catalog().taken(&caller.tenant, pool);
    let picked = vigie_catalog::pools::pick(&spec, &taken, count).map_err(|e| {
        fault(
            ApiFaultKind::Conflict,
            format!(
                "pool {pool} exhausted: {count} address(es) asked, {} free",
                e.free
            ),
        )
    })?;
    let at_ms = turn.now_ms;
    let mut out = Vec::with_capacity(picked.len());
    for address in picked {
        let a = Allocation {
            pool: pool.to_owned(),
            address,
            owner: owner.clone(),
            operator: caller.operator.clone(),
            at_ms,
        };
        core.catalog_mut()
            .put_allocation(turn, &caller.tenant, a.clone());
        out.push(a);
    }
    let list: Vec<IpAddr> = out.iter().map(|a| a.address).collect();
    core.audit_host(
        turn,
        caller,
        "",
        AuditAction::IpsAllocated,
        format!("pool {pool}: {} for {owner}", ranges(&list)),
    );
    turn.logs.push(Log::Catalog(CatalogLog::IpsAllocated {
        tenant: caller.tenant.clone(),
        pool: pool.to_owned(),
        count: out.len(),
    }));
    Ok(CatalogAnswer::Allocations(out))
}

/// Whether `tenant` may hold `count` more addresses, over all its
/// pools (limits.allocated_per_tenant).
pub fn check_allocated_share(core: &Core, tenant: &str, count: u32) -> Result<(), ApiFault> {
    let held = core.catalog().allocated(tenant);
    let share = core.limits().allocated_per_tenant;
    if held + u64::from(count) > share {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "tenant {tenant} holds {held} address(es): {count} more would pass its \
                 share of {share} (limits.allocated_per_tenant): nothing allocated"
            ),
        ));
    }
    Ok(())
}

pub fn release(
    core: &mut Core,
    caller: &Caller,
    pool: &str,
    address: Option<IpAddr>,
    owner: Option<Owner>,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    core.catalog().pool(caller, pool)?;
    if address.is_none() && owner.is_none() {
        return Err(fault(
            ApiFaultKind::Invalid,
            "name an address or an owner to release",
        ));
    }
    let gone: Vec<IpAddr> = core
        .catalog()
        .pool_allocations(&caller.tenant, pool)
        .into_iter()
        .filter(|a| address.is_none_or(|x| x == a.address))
        .filter(|a| owner.as_ref().is_none_or(|o| *o == a.owner))
        .map(|a| a.address)
        .collect();
    if gone.is_empty() {
        let what = match (address, &owner) {
            (Some(a), _) => format!("{a} is not allocated in pool {pool}"),
            (None, Some(o)) => format!("{o} holds no address of pool {pool}"),
            (None, None) => String::new(),
        };
        return Err(fault(ApiFaultKind::NotFound, what));
    }
    let mut out = Vec::new();
    for a in &gone {
        if let Some(rec) = core
            .catalog_mut()
            .remove_allocation(turn, &caller.tenant, pool, a)
        {
            out.push(rec);
        }
    }
    core.audit_host(
        turn,
        caller,
        "",
        AuditAction::IpsReleased,
        format!("pool {pool}: {}", ranges(&gone)),
    );
    turn.logs.push(Log::Catalog(CatalogLog::IpsReleased {
        tenant: caller.tenant.clone(),
        pool: pool.to_owned(),
        count: out.len(),
    }));
    Ok(CatalogAnswer::Allocations(out))
}

pub fn allocations(
    catalog: &Catalog,
    caller: &Caller,
    pool: &str,
) -> Result<CatalogAnswer, ApiFault> {
    catalog.pool(caller, pool)?;
    Ok(CatalogAnswer::Allocations(
        catalog.pool_allocations(&caller.tenant, pool),
    ))
}
