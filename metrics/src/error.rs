//! The metrics daemon's errors.

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("zmq: {0}")]
    Zmq(#[from] zmq::Error),
    #[error("cannot serve HTTP on {addr}: {reason}")]
    Bind { addr: String, reason: String },
    #[error("metrics token {}: {reason}", path.display())]
    Token {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("bad metrics endpoint {0:?}: expected http://HOST:PORT")]
    Endpoint(String),
}
