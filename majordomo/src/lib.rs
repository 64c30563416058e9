//! The majordomo: the only endpoint of the tower open to the network.
//!
//! A ROUTER socket with CURVE; its ZAP handler admits a peer only if its
//! Curve25519 public key is in the registry and accepted — an unknown key
//! is recorded as pending and refused, a revoked one refused. After the
//! handshake, only an allow-list of messages is dispatched, per kind of
//! peer: an agent may send heartbeats and reports for its own host, which
//! are relayed to the referee; the referee's orders for that host are
//! relayed back. A revoked key is cut off at once: told so, and nothing it
//! sends is dispatched any more.
//!
//! [`agent`] is the other side: a plug with the local driver on a remote
//! machine, connecting out to the majordomo.

pub mod agent;
pub mod backoff;
mod calls;
pub mod door;
mod error;
pub mod keys;
pub mod operator;
mod registry;
mod server;
mod throttle;
mod zap;

pub use calls::authorize;
pub use error::MajordomoError;
pub use server::{serve, MajordomoConfig};

/// The ZAP domain of the tower's front door.
pub const ZAP_DOMAIN: &str = "vigie";
