//! The majordomo's error type (`MajordomoError`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum MajordomoError {
    #[error("zeromq: {0}")]
    Zmq(#[from] zmq::Error),
    #[error(transparent)]
    Wire(#[from] vigie_wire::WireError),
    #[error("escalator: {0}")]
    Escalator(#[from] vigie_escalator::EscalatorError),
    #[error("key file {path}: {reason}")]
    Key { path: PathBuf, reason: String },
    #[error("plug: {0}")]
    Plug(#[from] vigie_plug::PlugError),
    #[error("the tower refused this agent's handshake {0} times: {1}")]
    Refused(u32, String),
    #[error("operator config {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("this agent's key was revoked by the tower")]
    Revoked,
    #[error("the agent's plug thread panicked")]
    PlugThread,
}
