//! `vigie servers provision … --pool NAME` (issue 25 item 4): the servers
//! a request queues get their address from an IP pool in the same
//! decision — one each, unless a server already holds one of that pool —
//! and the host each becomes is labelled `address=` with it (where the
//! deployer binds its proxy and replicas), unless its catalog labels say
//! an address already. Checked whole before anything is allocated: the
//! caller's own `ips.admin`, the pool, its free addresses, the tenant's
//! share.

use std::collections::BTreeSet;
use std::net::IpAddr;

use vigie_wire::catalog::Owner;
use vigie_wire::front::Verb;
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller, Labels, Origin};

use crate::core::state::Tower;
use crate::core::turn::Turn;

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

impl Tower {
    /// The addresses of `pool` held by server `name`.
    fn held_by(&self, tenant: &str, pool: &str, name: &str) -> Vec<IpAddr> {
        let owner = Owner::Server(name.to_owned());
        self.catalog
            .allocations
            .get(&(tenant.to_owned(), pool.to_owned()))
            .map(|t| {
                t.values()
                    .filter(|a| a.owner == owner)
                    .map(|a| a.address)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One address of `pool` for each of `names` holding none of it.
    pub(crate) fn provision_addresses(
        &mut self,
        caller: &Caller,
        pool: &str,
        names: &[String],
        turn: &mut Turn,
    ) -> Result<(), ApiFault> {
        if let Origin::Operator { home } = &caller.origin {
            let holds = self.access().operators().iter().any(|o| {
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
        let spec = self.pool(caller, pool)?;
        let needing: Vec<&String> = names
            .iter()
            .filter(|n| self.held_by(&caller.tenant, pool, n).is_empty())
            .collect();
        let count = u32::try_from(needing.len()).unwrap_or(u32::MAX);
        if count == 0 {
            return Ok(());
        }
        self.check_allocated_share(&caller.tenant, count)?;
        let taken: BTreeSet<IpAddr> = self
            .catalog
            .allocations
            .get(&(caller.tenant.clone(), pool.to_owned()))
            .map(|t| t.keys().copied().collect())
            .unwrap_or_default();
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
            self.allocate(caller, pool, Owner::Server(n.clone()), 1, turn)?;
        }
        Ok(())
    }

    /// The labels server `name`'s host is registered with: its catalog
    /// labels, and `address=` the first address a pool gave it, unless
    /// they say one.
    pub(crate) fn labels_with_address(&self, tenant: &str, name: &str, labels: &Labels) -> Labels {
        let mut labels = labels.clone();
        if labels.contains_key("address") {
            return labels;
        }
        let owner = Owner::Server(name.to_owned());
        let given = self
            .catalog
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
