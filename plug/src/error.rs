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
