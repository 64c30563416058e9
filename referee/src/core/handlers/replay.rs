//! An operator's call answered once per idempotency key (see `idem`): a
//! retry after a lost reply gets the first answer instead of acting twice.

use std::time::Instant;

use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind, Caller, IdemKey};

use crate::core::fetched::Fetched;
use crate::core::idem::{digest, idem_key, IdemRecord, Stored};
use crate::core::state::Core;
use crate::core::turn::Turn;

/// An operator's call, answered once per idempotency key.
pub fn idempotent(
    core: &mut Core,
    caller: &Caller,
    call: ApiCall,
    idem: Option<IdemKey>,
    db: &Fetched,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let Some(key) = idem.filter(|_| call.mutates()) else {
        return super::api::api(core, caller, call, db, now, turn);
    };
    let at = idem_key(caller, &key);
    let digest = digest(caller, &call);
    if let Some(rec) = core.idem().get(&at) {
        if rec.digest != digest {
            return Err(ApiFault::new(
                ApiFaultKind::Conflict,
                format!("idempotency key {} was used for another call", key.as_str()),
            ));
        }
        tracing::info!(event = "call_replayed", operator = %caller.operator, key = key.as_str());
        return match rec.answer.clone() {
            Stored::Answer(a) => Ok(a),
            Stored::Changes(ids) => Ok(ApiAnswer::Submitted(
                ids.iter()
                    .map(|id| super::changes::find(core, caller, id, db))
                    .collect::<Result<_, _>>()?,
            )),
        };
    }
    let answer = super::api::api(core, caller, call, db, now, turn)?;
    let stored = match &answer {
        ApiAnswer::Submitted(v) => Stored::Changes(v.iter().map(|c| c.id.clone()).collect()),
        other => Stored::Answer(other.clone()),
    };
    let rec = IdemRecord {
        at_ms: turn.now_ms,
        digest,
        answer: stored,
    };
    core.remember(turn, at, rec);
    Ok(answer)
}
