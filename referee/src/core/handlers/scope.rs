//! Whether a host is inside a caller's scope, judged on the tower's own
//! record of it (its tenant and labels), and the refusal when it is not.

use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller, Labels};

use crate::core::scope::Visible;
use crate::core::state::Core;

/// Whether a host id of the caller's tenant is inside the scope; an id
/// the tower does not know yet is judged on its name alone.
pub fn host_visible(core: &Core, v: &Visible, id: &str) -> bool {
    match core.hosts().get(id) {
        Some(h) => v.host(&h.rec.tenant, id, &h.rec.labels),
        None => v.host(v.tenant(), id, &Labels::new()),
    }
}

/// A record that may name no host (audit, keys): those without one are
/// only seen with a scope over every host.
pub fn record_visible(core: &Core, v: &Visible, host: &str) -> bool {
    if host.is_empty() {
        v.unscoped()
    } else {
        host_visible(core, v, host)
    }
}

/// Not found for a host of another tenant (it does not exist for the
/// caller); forbidden unless the caller's scope covers `host`.
pub fn check_host(core: &Core, caller: &Caller, host: &str) -> Result<(), ApiFault> {
    if core
        .hosts()
        .get(host)
        .is_some_and(|h| h.rec.tenant != caller.tenant)
    {
        return Err(ApiFault::new(
            ApiFaultKind::NotFound,
            format!("no host {host}"),
        ));
    }
    if host_visible(core, &Visible::of(caller), host) {
        return Ok(());
    }
    Err(ApiFault::new(
        ApiFaultKind::Forbidden,
        format!(
            "operator {} is not permitted this on host {host}",
            caller.operator
        ),
    ))
}
