//! What every operator call that changes one does: refuse, audited, what
//! would raise the caller's power, and store, audit and publish the
//! operator's new record (`operators.rs`, `regrant.rs`).

use vigie_wire::front::{Grant, OperatorRecord, KEYS_TOPIC};
use vigie_wire::tower::{ApiFault, Caller, Published};

use crate::core::audit::AuditAction;
use crate::core::grants::Over;
use crate::core::operators::forbidden;
use crate::core::state::Core;
use crate::core::turn::{Log, Turn};

/// Refuses, audited, what would raise the caller's power: `beyond` is
/// what the caller lacks for it (`what` says what it tried). The record
/// and the message stay in the caller's tenant: they name the caller, the
/// operator acted on and grants, never another tenant.
pub(crate) fn refuse_beyond(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    beyond: &[&Grant],
    what: &str,
) -> Result<(), ApiFault> {
    if beyond.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = beyond.iter().map(|g| g.to_string()).collect();
    let msg = format!(
        "operator {} may not {what}: {} beyond its own grants",
        caller.operator,
        list.join(" ")
    );
    tracing::warn!(event = "operator_refused", tenant = %caller.tenant, operator = %caller.operator, reason = %msg);
    core.audit_host(turn, caller, "", AuditAction::OperatorRefused, msg.clone());
    Err(forbidden(msg))
}

/// Refuses, audited, to rotate the key of or revoke `target` unless the
/// caller holds every grant it holds.
pub(crate) fn check_over(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    target: &OperatorRecord,
    over: Over,
) -> Result<(), ApiFault> {
    let lacking = core
        .access()
        .powers(caller)?
        .map_or_else(Vec::new, |h| crate::core::grants::stronger(h, target));
    let what = format!("{} operator {}", over.word(), target.name);
    refuse_beyond(core, turn, caller, &lacking, &what)
}

/// Stores an operator's record, audits and publishes it.
pub(crate) fn store_operator(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    rec: OperatorRecord,
    action: AuditAction,
) {
    core.access_mut().put_operator(turn, rec.clone());
    let grants: Vec<String> = rec.grants.iter().map(Grant::to_string).collect();
    let summary = format!(
        "operator {} key {} [{}]",
        rec.name,
        rec.public,
        grants.join(" ")
    );
    core.audit_host(turn, caller, "", action, summary);
    turn.logs.push(Log::OperatorChanged {
        name: rec.name.clone(),
        tenant: rec.tenant.clone(),
        revoked: rec.revoked,
    });
    turn.publish
        .push((vec![KEYS_TOPIC.to_vec()], Published::Operator(rec)));
}
