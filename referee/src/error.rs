//! The referee's error type (`RefereeError`).

#[derive(Debug, thiserror::Error)]
pub enum RefereeError {
    #[error("escalator: {0}")]
    Escalator(#[from] vigie_escalator::EscalatorError),
    #[error("zeromq: {0}")]
    Zmq(#[from] zmq::Error),
    #[error(transparent)]
    Wire(#[from] vigie_wire::WireError),
    /// A batch the store refuses (see `store::MemStore`).
    #[error("store: {0}")]
    Store(String),
    #[error("stored record {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("cannot make the admin operator: {0}")]
    Admin(vigie_wire::tower::ApiFault),
    /// The secrets' key or a secret at rest (never its value).
    #[error("secrets: {0}")]
    Vault(String),
    #[error("the SSH key of tenant {tenant}: {reason}")]
    SshKey { tenant: String, reason: String },
}
