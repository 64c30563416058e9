//! `vigie servers provision … --pool NAME` (issue 25 item 4): the servers
//! a request queues get their address from an IP pool in the same
//! decision — one each, unless a server already holds one of that pool —
//! and the host each becomes is labelled `address=` with it (where the
//! deployer binds its proxy and replicas), unless its catalog labels say
//! an address already. Checked whole before anything is allocated: the
//! caller's own `ips.admin`, the pool, its free addresses, the tenant's
//! share.

use vigie_wire::catalog::Owner;
use vigie_wire::front::Verb;
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller, Origin};

use crate::core::state::Core;
use crate::core::turn::Turn;

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// One address of `pool` for each of `names` holding none of it.
pub fn provision_addresses(
    core: &mut Core,
    caller: &Caller,
    pool: &str,
    names: &[String],
    turn: &mut Turn,
) -> Result<(), ApiFault> {
    if let Origin::Operator { home } = &caller.origin {
        let holds = core.access().operators().iter().any(|o| {
            o.tenant == *home
                && o.name == caller.operator
                && !o.revoked
                && o.grants.iter().any(|g| g.verb == Verb::IpsAdmin)
        });
        if !holds {
            return Err(fault(
                ApiFaultKind::Forbidden,
                format!(
                    "operator {} may not take addresses from pool {pool}: needs ips.admin; nothing done",
                    caller.operator
                ),
            ));
        }
    }
    let spec = core.catalog().pool(caller, pool)?;
    let needing: Vec<&String> = names
        .iter()
        .filter(|n| core.catalog().held_by(&caller.tenant, pool, n).is_empty())
        .collect();
    let count = u32::try_from(needing.len()).unwrap_or(u32::MAX);
    if count == 0 {
        return Ok(());
    }
    super::ips::check_allocated_share(core, &caller.tenant, count)?;
    let taken = core.catalog().taken(&caller.tenant, pool);
    vigie_catalog::pools::pick(&spec, &taken, count).map_err(|e| {
        fault(
            ApiFaultKind::Conflict,
            format!(
                "pool {pool} has {} free address(es), {count} server(s) need one: nothing done",
                e.free
            ),
        )
    })?;
    for n in needing {
        super::ips::allocate(core, caller, pool, Owner::Server(n.clone()), 1, turn)?;
    }
    Ok(())
}
