//! What can go wrong calling the tower.

use std::time::Duration;

use vigie_wire::tower::ApiFault;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("zeromq: {0}")]
    Zmq(#[from] zmq::Error),
    #[error(transparent)]
    Wire(#[from] vigie_wire::WireError),
    #[error("{0}")]
    Refused(#[from] ApiFault),
    #[error("no answer from the tower at {endpoint} within {after:?}")]
    Timeout { endpoint: String, after: Duration },
    /// An answer of another call's type (a tower of another version).
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("after {after:?}, {count} changes are not final: {open}")]
    NotFinal {
        after: Duration,
        count: usize,
        open: String,
    },
    /// The front door turned the connection down (key, handshake).
    #[error("{0}")]
    Door(String),
}
