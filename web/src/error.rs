//! The web daemon's errors.

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the web endpoint {0:?} is not http://IP:PORT (loopback) or https://IP:PORT")]
    Endpoint(String),
    #[error("the web endpoint {0:?} is not a loopback address: plain HTTP would carry sessions and tokens in clear; use https://")]
    NotLoopback(String),
    #[error("tls: {0}")]
    Tls(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}
