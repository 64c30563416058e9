//! The launcher's error type (`LauncherError`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    #[error(transparent)]
    Setup(#[from] crate::setup::SetupError),
    #[error("refusing to start: {0}")]
    Locked(vigie_escalator::EscalatorError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("zeromq: {0}")]
    Zmq(#[from] zmq::Error),
    #[error("{name} did not become ready: {reason}")]
    NotReady { name: String, reason: String },
}

impl LauncherError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
