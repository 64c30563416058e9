//! The majordomo's front door: what remote peers (agents today, operators'
//! clients later) and the majordomo say to each other over CurveZMQ, and
//! the key registry that decides who may talk at all.

use serde::{Deserialize, Serialize};

use crate::tower::{ApiCall, ApiReply, ChangeView, PlugEvent, Published};

// The access records were here first: their paths stay.
pub use crate::access::{Grant, KeyRecord, KeyState, Knock, OperatorRecord, Verb, KEYS_TOPIC};

/// From a peer to the majordomo. Only these are dispatched, and only for
/// the kind of peer the sender's key was registered as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrontIn {
    /// An agent's heartbeat or report, for the host its key belongs to.
    Plug(PlugEvent),
    /// An operator's call. The majordomo checks the operator's permission
    /// for the call's verb and sends it on as that operator, in their tenant.
    Call {
        id: u64,
        call: ApiCall,
        /// Act in another tenant (needs `tenants.admin`).
        tenant: Option<String>,
        /// For `Status` of one change or `StatusOf` of several: also send
        /// their updates (`FrontOut::Update`), of each the referee lets the
        /// caller read.
        watch: bool,
        /// See [`crate::tower::ApiRequest::idem`].
        idem: Option<crate::tower::IdemKey>,
    },
}

/// From the majordomo to a peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrontOut {
    /// An order or acknowledgement for the agent's host.
    Published(Published),
    /// "The tower is here" (once a second): an agent that hears nothing for
    /// a while reconnects.
    Ping,
    /// What the peer sent was not dispatched, and why.
    Refused { reason: String },
    /// The peer's key was revoked: it is cut off.
    Revoked,
    /// The answer to an operator's `FrontIn::Call` (same id).
    Reply(ApiReply),
    /// A watched change's new state, after it was stored.
    Update(ChangeView),
}
