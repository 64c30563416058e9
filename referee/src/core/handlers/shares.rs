//! The shares that bound what a tenant may hold in the catalogs and
//! among hosts (the setup's `limits:`), checked before anything is
//! written.

use vigie_wire::tower::ApiFault;

use crate::core::catalog::fault;
use crate::core::state::Core;

/// Whether `rows` more servers fit `tenant`'s share and the tower's
/// (the setup's `limits:`): checked before anything is written, so an
/// import past it is refused whole. The share also bounds the names a
/// tenant can squat (names are tower-wide: they are host ids).
pub fn check_servers_share(
    core: &Core,
    tenant: &str,
    file: &str,
    rows: usize,
) -> Result<(), ApiFault> {
    let rows = rows as u64;
    let all = core.catalog().server_count() as u64;
    let theirs = if all + rows <= core.limits().servers_per_tenant {
        all
    } else {
        core.catalog().tenant_server_count(tenant)
    };
    let l = &core.limits();
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
pub fn check_hosts_share(core: &Core, tenant: &str) -> Result<(), ApiFault> {
    let all = core.hosts().len() as u64;
    // One pass over the hosts per new id, skipped while the whole
    // tower is below a tenant's share.
    let theirs = if all < core.limits().hosts_per_tenant {
        all
    } else {
        core.hosts()
            .values()
            .filter(|h| h.rec.tenant == tenant)
            .count() as u64
    };
    let l = &core.limits();
    let refuse = |held: u64, most: u64, whose: String, field: &str| {
        fault(
            vigie_wire::tower::ApiFaultKind::Conflict,
            format!("{whose} has {held} hosts, at most {most} (limits.{field}): not registered"),
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
