//! The web daemon's errors.

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the web endpoint {0:?} is not http://IP:PORT")]
    Endpoint(String),
    #[error("the web endpoint {0:?} is not a loopback address: the console has no TLS yet (put a TLS proxy on this machine in front of a loopback address)")]
    NotLoopback(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
