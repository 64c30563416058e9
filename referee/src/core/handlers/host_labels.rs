//! Giving hosts their labels: a new host gets the setup's rules applied
//! (see `labels`), an operator's `hosts label` is audited `labels_set` with
//! before and after.

use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Labels};

use crate::core::audit::AuditAction;
use crate::core::labels::{show, with_rules};
use crate::core::model::HostRecord;
use crate::core::state::{Core, HostState};
use crate::core::turn::{Log, Turn};

/// A new host in `tenant`, the rules applied to `labels`.
pub fn new_host(core: &mut Core, tenant: &str, id: &str, labels: Labels, turn: &mut Turn) {
    let labels = with_rules(core.rules(), id, labels);
    core.hosts_mut()
        .insert(HostState::new(HostRecord::new(id, tenant, labels)));
    turn.logs.push(Log::HostRegistered {
        host: id.to_owned(),
    });
    turn.dirty_hosts.insert(id.to_owned());
}

/// Replaces a host's labels, audited with before and after; nothing
/// when they are the same.
pub fn set_labels(
    core: &mut Core,
    caller: &Caller,
    host: &str,
    labels: Labels,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let Some(h) = core.hosts_mut().get_mut(host) else {
        return Err(ApiFault::new(
            ApiFaultKind::NotFound,
            format!("no host {host}"),
        ));
    };
    let Some(before) = h.relabel(labels, turn) else {
        return Ok(ApiAnswer::Done);
    };
    let summary = format!(
        "host {host} labels [{}] -> [{}]",
        show(&before),
        show(&h.rec.labels)
    );
    core.audit_host(turn, caller, host, AuditAction::LabelsSet, summary);
    Ok(ApiAnswer::Done)
}

/// `hosts label ID k=v -k`: sets and removes labels of a host of the
/// caller's tenant and scope.
pub fn host_label(
    core: &mut Core,
    caller: &Caller,
    host: &str,
    set: Labels,
    remove: Vec<String>,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let Some(h) = core
        .hosts()
        .get(host)
        .filter(|h| h.rec.tenant == caller.tenant)
    else {
        return Err(ApiFault::new(
            ApiFaultKind::NotFound,
            format!("no host {host}"),
        ));
    };
    super::scope::check_host(core, caller, host)?;
    if let Some(k) = set.keys().find(|k| k.is_empty() || remove.contains(k)) {
        return Err(ApiFault::new(
            ApiFaultKind::Invalid,
            format!("label {k:?}: set and removed at once, or empty"),
        ));
    }
    let mut labels = h.rec.labels.clone();
    for k in &remove {
        labels.remove(k);
    }
    labels.extend(set);
    set_labels(core, caller, host, labels, turn)
}
