//! `ProvisionError`: why provisioning one server failed (its `Display` is
//! the reason the catalog shows), or why the daemon cannot run.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The same words whatever kept the server away (closed, filtered,
    /// no route, a port that is no SSH server): see `ssh::unreachable`.
    #[error("unreachable: {address}: no SSH server answered")]
    Unreachable { address: String },
    #[error(
        "{address} is outside the networks this tower provisions (provisioner.networks \
         of its setup): refused before any connection"
    )]
    OutsideNetworks { address: String },
    #[error("SSH refused this tenant's key for user {user} (`vigie servers ssh-key` prints it): {detail}")]
    Credentials { user: String, detail: String },
    #[error(
        "host key mismatch: the catalog pins {expected}, the server offers {}; \
         refused (never accepted silently)",
        seen.join(", ")
    )]
    HostKeyMismatch { expected: String, seen: Vec<String> },
    #[error("missing sudo: user {user} {detail}; connect as root or allow `sudo -n`")]
    MissingSudo { user: String, detail: String },
    #[error("install failed ({step}): {detail}")]
    Install { step: &'static str, detail: String },
    #[error("{what} took more than {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("the referee: {0}")]
    Referee(#[from] vigie_client::ClientError),
    #[error("{0}")]
    Config(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ProvisionError {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
