//! The host calls: `hosts` (the caller's view of them, with their
//! queues' state) and registering a host in the caller's tenant
//! (`hosts add`, a setup's hosts, an accepted agent key, an enrolment).

use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, ChangeState, HostView, Labels};

use crate::core::audit::AuditAction;
use crate::core::labels::{show, Register};
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::Turn;

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// The hosts of the caller's tenant and scope.
pub(crate) fn hosts_view(core: &Core, caller: &Caller, now_ms: u64) -> ApiAnswer {
    let vis = Visible::of(caller);
    ApiAnswer::Hosts(
        core.hosts()
            .values()
            .filter(|h| vis.host(&h.rec.tenant, &h.rec.id, &h.rec.labels))
            .map(|h| HostView {
                id: h.rec.id.clone(),
                tenant: h.rec.tenant.clone(),
                labels: h.rec.labels.clone(),
                reported: h.reported.clone(),
                online: h.online,
                refusing: h.refusing.clone(),
                queued: u32::try_from(core.queues().len_of(&h.rec.id)).unwrap_or(u32::MAX),
                in_flight: core
                    .queues()
                    .head(&h.rec.id)
                    .filter(|id| {
                        core.queues()
                            .change(id)
                            .is_some_and(|c| c.view.state != ChangeState::Queued)
                    })
                    .cloned(),
                held: h.rec.held,
                plug_down: (!h.online)
                    .then(|| core.health().plug_down(&h.rec.id, now_ms))
                    .flatten(),
            })
            .collect(),
    )
}

/// Registers a host in the caller's tenant (see [`Register`] for an
/// id that exists). A host id belongs to one tenant for good.
pub(crate) fn host_add(
    core: &mut Core,
    caller: &Caller,
    host: &str,
    how: Register,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    vigie_changes::validate_host_id(host)
        .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
    if core
        .hosts()
        .get(host)
        .is_some_and(|h| h.rec.tenant != caller.tenant)
    {
        // Host ids route orders, so they are unique in the tower; the
        // answer does not say which tenant has it.
        return Err(fault(
            ApiFaultKind::Conflict,
            format!("host id {host} cannot be registered: choose another id"),
        ));
    }
    super::scope::check_host(core, caller, host)?;
    let exists = core.hosts().contains(host);
    if !exists {
        super::shares::check_hosts_share(core, &caller.tenant)?;
    }
    match how {
        Register::Ensure if exists => Ok(ApiAnswer::Done),
        Register::New(_) if exists => Err(fault(
            ApiFaultKind::Conflict,
            format!("host {host} exists: its labels change with `vigie hosts label {host} k=v`"),
        )),
        Register::Setup(labels) if exists => {
            super::host_labels::set_labels(core, caller, host, labels, turn)
        }
        Register::New(labels) | Register::Setup(labels) => {
            register(core, caller, host, labels, turn)
        }
        Register::Ensure => register(core, caller, host, Labels::new(), turn),
    }
}

fn register(
    core: &mut Core,
    caller: &Caller,
    host: &str,
    labels: Labels,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    super::host_labels::new_host(core, &caller.tenant, host, labels, turn);
    let labels = core
        .hosts()
        .get(host)
        .map(|h| show(&h.rec.labels))
        .unwrap_or_default();
    let summary = format!("host {host} registered [{labels}]");
    core.audit_host(turn, caller, host, AuditAction::HostRegistered, summary);
    Ok(ApiAnswer::Done)
}
