//! The majordomo's front door: what remote peers (agents today, operators'
//! clients later) and the majordomo say to each other over CurveZMQ, and
//! the key registry that decides who may talk at all.

use serde::{Deserialize, Serialize};

use crate::tower::{HostId, PlugEvent, Published};

/// From a peer to the majordomo. Only these are dispatched, and only for
/// the kind of peer the sender's key was registered as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FrontIn {
    /// An agent's heartbeat or report, for the host its key belongs to.
    Plug(PlugEvent),
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    /// Seen at the door, not admitted: an operator must accept it.
    Pending,
    Accepted,
    Revoked,
}

impl KeyState {
    pub fn word(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Accepted => "accepted",
            KeyState::Revoked => "revoked",
        }
    }
}

/// A Curve25519 public key the tower knows, and for which host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Z85 text (40 characters).
    pub public: String,
    /// Empty while pending: a handshake does not say which host a key is for.
    pub host: HostId,
    pub tenant: String,
    pub state: KeyState,
    /// Where it was last seen knocking (pending keys).
    pub address: String,
}

/// The PUB topic of key registry changes (host ids never start with '@').
pub const KEYS_TOPIC: &[u8] = b"@keys\0";
