//! `operators grant` / `operators ungrant`: one grant given to or taken
//! from an operator in place — its key, name and watches stay. Giving is
//! bounded by the giver's own grants; taking needs the taker to hold every
//! grant of the operator, and never leaves `tenants.admin` or a tenant's
//! `operators.admin` without a holder. Both are audited, refusals too.

use vigie_wire::front::Grant;
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller};

use super::operator_change::{check_over, refuse_beyond, store_operator};
use crate::core::audit::AuditAction;
use crate::core::grants::{self, Over};
use crate::core::operators::check_grants;
use crate::core::state::Core;
use crate::core::turn::Turn;

/// Gives (`give`) or takes `grant` to or from operator `name` of the
/// caller's tenant. Giving a grant it holds, or taking one it does not
/// hold, changes nothing: done / not found, no record.
pub(crate) fn regrant(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    name: &str,
    grant: Grant,
    give: bool,
) -> Result<ApiAnswer, ApiFault> {
    check_grants(std::slice::from_ref(&grant))?;
    let Some(rec) = core.access().active(&caller.tenant, name).cloned() else {
        return Err(ApiFault::new(
            ApiFaultKind::NotFound,
            format!("no operator {name}"),
        ));
    };
    let asked = [grant.clone()];
    let lacking = core
        .access()
        .powers(caller)?
        .map_or_else(Vec::new, |h| grants::beyond(h, &asked));
    let mut changed = rec.clone();
    if give {
        refuse_beyond(
            core,
            turn,
            caller,
            &lacking,
            &format!("grant to operator {name}"),
        )?;
        if grants::without(&rec.grants, &grant).is_some() {
            return Ok(ApiAnswer::Done);
        }
        changed.grants.push(grant);
        store_operator(core, turn, caller, changed, AuditAction::OperatorGranted);
        return Ok(ApiAnswer::Done);
    }
    check_over(core, turn, caller, &rec, Over::Ungrant)?;
    let Some(rest) = grants::without(&rec.grants, &grant) else {
        return Err(ApiFault::new(
            ApiFaultKind::NotFound,
            format!("operator {name} holds no grant {grant}"),
        ));
    };
    changed.grants = rest;
    if let Some(verb) = grants::left_without(core.access().operators(), &changed) {
        return Err(ApiFault::new(
            ApiFaultKind::Conflict,
            format!(
                "operator {name} is the last who holds {}: grant it to another \
                     operator first",
                verb.word()
            ),
        ));
    }
    store_operator(core, turn, caller, changed, AuditAction::OperatorUngranted);
    Ok(ApiAnswer::Done)
}
