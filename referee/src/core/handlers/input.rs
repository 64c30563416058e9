//! The one entry the shell's loop decides through: [`handle`] takes an
//! [`Input`] — a call, a plug's event, a tick — at the turn's monotonic
//! time and puts what it changes, stores, publishes and answers into the
//! turn. Here, above every handler, so `state.rs` calls none of them
//! (they all name `Core`: no import circle).

use std::time::Instant;

use vigie_wire::tower::{ApiCall, ApiReply, ApiRequest};

use super::replay::idempotent;
use crate::core::fetched::Fetched;
use crate::core::state::{Core, Input};
use crate::core::turn::Turn;

/// Decides one input at `now` (the turn's monotonic time; the wall clock
/// is `turn.now_ms`): what it changes, stores, publishes and answers goes
/// into the turn.
pub fn handle(core: &mut Core, input: Input, now: Instant, turn: &mut Turn) {
    match input {
        Input::Call { to, req, fetched } => call(core, to, req, fetched, now, turn),
        Input::Plug(ev) => super::events::plug_event(core, ev, now, turn),
        Input::Tick { judge: true } => core.tick(now, turn),
        Input::Tick { judge: false } => core.tick_unjudged(now, turn),
    }
}

/// A call, answered once per idempotency key; a logs request is answered
/// later, when its host answers (`observe.rs`).
fn call(
    core: &mut Core,
    to: Vec<u8>,
    req: ApiRequest,
    fetched: &Fetched,
    now: Instant,
    turn: &mut Turn,
) {
    let ApiRequest {
        id,
        caller,
        call,
        idem,
    } = req;
    let body = match call {
        ApiCall::Logs(query) => {
            match super::observe::logs_call(core, &caller, query, to.clone(), id, now, turn) {
                Ok(()) => return,
                Err(fault) => Err(fault),
            }
        }
        call => idempotent(core, &caller, call, idem, fetched, now, turn),
    };
    turn.replies.push((to, ApiReply { id, body }));
}
