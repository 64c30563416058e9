//! The operators' words and rules: their store key, the admin made at the
//! first start, valid names and grants, the operator calls. The operators
//! themselves are `access.rs`'s; the calls that change them, audited and
//! published on `KEYS_TOPIC` (the majordomo admits operators' keys and
//! checks their grants from its copy), are `handlers/operators.rs`.

use vigie_wire::front::Grant;
use vigie_wire::tower::{ApiFault, ApiFaultKind};

/// The operator made at the tower's first start.
pub const ADMIN: &str = "admin";
/// The tenant of the tower's own operators (the wire's, which the
/// daemons that only call the referee name too).
pub use vigie_wire::ids::TOWER_TENANT;

/// Operator names are per tenant: `operator/<tenant>/<name>`.
pub fn operator_key(tenant: &str, name: &str) -> Vec<u8> {
    format!("operator/{tenant}/{name}").into_bytes()
}

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// Operator names and tenant names follow the host id rules.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), ApiFault> {
    vigie_changes::validate_host_id(name).map_err(|e| {
        fault(
            ApiFaultKind::Invalid,
            format!("{what} name: {}", e.to_string().replace("host id", "name")),
        )
    })
}

pub(crate) fn check_grants(grants: &[Grant]) -> Result<(), ApiFault> {
    for g in grants {
        let scope = vigie_changes::GrantScope::parse(&g.scope).map_err(|e| {
            fault(
                ApiFaultKind::Invalid,
                format!("grant {g}: the scope is neither hosts nor an application: {e}"),
            )
        })?;
        scope
            .fits(g.verb)
            .map_err(|e| fault(ApiFaultKind::Invalid, format!("grant {g}: {e}")))?;
    }
    Ok(())
}

pub enum OperatorCall {
    List,
    Add {
        name: String,
        public: String,
        grants: Vec<Grant>,
    },
    RotateKey {
        name: String,
        public: String,
    },
    Revoke {
        name: String,
    },
    /// Gives (`give`) or takes one grant in place (`regrant.rs`).
    Regrant {
        name: String,
        grant: Grant,
        give: bool,
    },
}

pub(crate) fn forbidden(msg: String) -> ApiFault {
    fault(ApiFaultKind::Forbidden, msg)
}
