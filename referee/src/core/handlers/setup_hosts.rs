//! The hosts the launcher's setup file declares, with their labels (rules
//! applied): registered or relabelled at the referee's start, audited as
//! the setup's doing. With operators' `hosts add`/labels, this is the only
//! way a host gets labels — never from what its plug announces.

use vigie_wire::tower::{ApiFaultKind, Caller, HostId, Labels};

use crate::core::state::Core;
use crate::core::turn::Turn;

/// Who the audit says changed labels from the setup file.
pub const SETUP_OPERATOR: &str = "setup";

/// `ID` or `ID:k=v,k=v` (the launcher's `--setup-host` argument).
pub fn parse_setup_host(text: &str) -> Result<(HostId, Labels), String> {
    let (id, labels) = text.split_once(':').unwrap_or((text, ""));
    vigie_changes::validate_host_id(id).map_err(|e| format!("{text:?}: {e}"))?;
    let mut out = Labels::new();
    for pair in labels.split(',').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("{text:?}: label {pair:?} is not k=v"))?;
        out.insert(k.to_owned(), v.to_owned());
    }
    Ok((id.to_owned(), out))
}

/// Makes the setup's hosts exist with the setup's labels, in the
/// tower's tenant. A host id another tenant registered first is left
/// alone (with an event): the setup does not move hosts across tenants.
pub fn apply_setup_hosts(core: &mut Core, hosts: &[(HostId, Labels)], turn: &mut Turn) {
    let caller = Caller::internal(crate::core::operators::TOWER_TENANT, SETUP_OPERATOR);
    for (id, labels) in hosts {
        if let Err(f) = super::host_calls::host_add(
            core,
            &caller,
            id,
            crate::core::labels::Register::Setup(labels.clone()),
            turn,
        ) {
            let conflict = f.kind == ApiFaultKind::Conflict;
            tracing::warn!(event = "setup_host_refused", host = %id, conflict, reason = %f.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_host_argument_is_an_id_and_labels() {
        let (id, labels) = parse_setup_host("web-1:role=web,site=x").unwrap();
        assert_eq!(id, "web-1");
        assert_eq!(labels.get("role").map(String::as_str), Some("web"));
        assert_eq!(labels.len(), 2);
        assert!(parse_setup_host("web-2").unwrap().1.is_empty());
        assert!(parse_setup_host("web-1:role").is_err());
        assert!(parse_setup_host("bad id:role=x").is_err());
    }
}
