//! Escalator's error type (`EscalatorError`) and the faults its replies carry.

use std::path::PathBuf;
use std::time::Duration;

use vigie_wire::escalator::Fault;
use vigie_wire::WireError;

#[derive(Debug, thiserror::Error)]
pub enum EscalatorError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("zeromq: {0}")]
    Zmq(#[from] zmq::Error),
    /// The server answered with an error.
    #[error("escalator refused the request: {0}")]
    Fault(#[from] Fault),
    #[error("no reply from escalator at {endpoint} after {after:?}")]
    Timeout { endpoint: String, after: Duration },
    #[error("unexpected reply to {request}: {got}")]
    UnexpectedReply { request: &'static str, got: String },
    #[error("data dir {dir} is in use by another process (pid {pid}, holding {lock})")]
    Locked {
        dir: PathBuf,
        pid: String,
        lock: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("storage engine: {0}")]
    Engine(#[from] crate::engine::EngineError),
}

impl EscalatorError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
