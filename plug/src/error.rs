//! The plug's error type (`PlugError`).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PlugError {
    #[error("journal {path}: {source}")]
    Journal {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("stash {path}: {source}")]
    Stash {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Wire(#[from] vigie_wire::WireError),
    #[error("zeromq: {0}")]
    Zmq(#[from] zmq::Error),
}

impl PlugError {
    /// The plug's own storage failed (a full or failing disk): the plug
    /// stays up and refuses orders until it can write again.
    pub fn is_storage(&self) -> bool {
        matches!(self, PlugError::Journal { .. } | PlugError::Stash { .. })
    }
}
