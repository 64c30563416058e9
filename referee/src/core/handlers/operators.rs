//! The operator calls: list, add, rotate a key, revoke (grant and ungrant
//! are `regrant.rs`). Each change is stored (`access.rs`), audited, and
//! published on `KEYS_TOPIC` after it is stored; what would raise the
//! caller's power is refused, audited.

use vigie_wire::front::{Grant, OperatorRecord, Verb};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller};

use super::operator_change::{check_over, refuse_beyond, store_operator};
use crate::core::audit::AuditAction;
use crate::core::grants::Over;
use crate::core::keys::check_public;
use crate::core::operators::{check_grants, check_name, OperatorCall, ADMIN, TOWER_TENANT};
use crate::core::state::Core;
use crate::core::turn::Turn;

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// Operator `name` of the caller's tenant, revoked or not.
fn mine(core: &Core, caller: &Caller, name: &str) -> Option<OperatorRecord> {
    core.access()
        .operators()
        .iter()
        .find(|o| o.name == name && o.tenant == caller.tenant)
        .cloned()
}

pub fn operator_call(
    core: &mut Core,
    caller: &Caller,
    call: OperatorCall,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    match call {
        OperatorCall::List => Ok(ApiAnswer::Operators(
            core.access()
                .operators()
                .iter()
                .filter(|o| o.tenant == caller.tenant)
                .cloned()
                .collect(),
        )),
        OperatorCall::Add {
            name,
            public,
            grants,
        } => add(core, turn, caller, name, public, grants),
        OperatorCall::RotateKey { name, public } => {
            check_public(&public)?;
            let Some(rec) = mine(core, caller, &name).filter(|o| !o.revoked) else {
                return Err(fault(ApiFaultKind::NotFound, format!("no operator {name}")));
            };
            // Whoever holds the new key becomes that operator.
            check_over(core, turn, caller, &rec, Over::Rotate)?;
            core.access().check_key_free(&public)?;
            let mut rec = rec;
            rec.public = public;
            store_operator(core, turn, caller, rec, AuditAction::OperatorKeyRotated);
            Ok(ApiAnswer::Done)
        }
        OperatorCall::Revoke { name } => revoke(core, turn, caller, &name),
        OperatorCall::Regrant { name, grant, give } => {
            super::regrant::regrant(core, turn, caller, &name, grant, give)
        }
    }
}

/// A new operator of the caller's tenant, with grants the caller holds.
fn add(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    name: String,
    public: String,
    grants: Vec<Grant>,
) -> Result<ApiAnswer, ApiFault> {
    check_name("operator", &name)?;
    check_name("tenant", &caller.tenant)?;
    check_public(&public)?;
    check_grants(&grants)?;
    let lacking = core
        .access()
        .powers(caller)?
        .map_or_else(Vec::new, |h| crate::core::grants::beyond(h, &grants));
    refuse_beyond(core, turn, caller, &lacking, "grant")?;
    if mine(core, caller, &name).is_some_and(|o| !o.revoked) {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "operator {name} exists: `operators rotate-key` gives it a new key; \
                 revoke it before adding it again"
            ),
        ));
    }
    core.access().check_key_free(&public)?;
    let rec = OperatorRecord {
        name,
        tenant: caller.tenant.clone(),
        public,
        grants,
        revoked: false,
    };
    store_operator(core, turn, caller, rec, AuditAction::OperatorAdded);
    Ok(ApiAnswer::Done)
}

/// Cuts an operator of the caller's tenant off (already revoked: done).
fn revoke(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    name: &str,
) -> Result<ApiAnswer, ApiFault> {
    let Some(rec) = mine(core, caller, name) else {
        return Err(fault(ApiFaultKind::NotFound, format!("no operator {name}")));
    };
    if rec.revoked {
        return Ok(ApiAnswer::Done);
    }
    // A compromised key is cut off by someone at least as strong: the
    // tower's admin holds every grant.
    check_over(core, turn, caller, &rec, Over::Revoke)?;
    if let Some(verb) = crate::core::grants::last_holder(core.access().operators(), &rec) {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!(
                "operator {name} is the last who holds {}: grant it to another \
                 operator first",
                verb.word()
            ),
        ));
    }
    let mut rec = rec;
    rec.revoked = true;
    store_operator(core, turn, caller, rec, AuditAction::OperatorRevoked);
    Ok(ApiAnswer::Done)
}

/// At the first start (no operator at all), makes the tower's admin:
/// every permission over every host, in the tower's tenant.
pub fn bootstrap_admin(core: &mut Core, public: &str, turn: &mut Turn) -> Result<bool, ApiFault> {
    if !core.access().operators().is_empty() {
        return Ok(false);
    }
    let caller = Caller::internal(TOWER_TENANT, "tower");
    let grants = Verb::ALL
        .into_iter()
        .map(|verb| Grant {
            verb,
            scope: "*".into(),
        })
        .collect();
    operator_call(
        core,
        &caller,
        OperatorCall::Add {
            name: ADMIN.into(),
            public: public.to_owned(),
            grants,
        },
        turn,
    )?;
    Ok(true)
}
