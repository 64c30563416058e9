//! The web console's calls (`ApiCall::Web`): an operator's one-time login
//! tickets, console sessions and API tokens. The referee authenticates and
//! stores them (hashed) and audits them; the web daemon only redeems and
//! checks them, as the tower (`Origin::Tower`).

use serde::{Deserialize, Serialize};

/// What a credential is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CredentialKind {
    /// A one-time login URL's secret: valid a minute, used once.
    Ticket,
    /// A console session (the cookie).
    Session,
    /// An operator's API token, for scripts.
    Token,
}

impl CredentialKind {
    pub fn word(self) -> &'static str {
        match self {
            CredentialKind::Ticket => "ticket",
            CredentialKind::Session => "session",
            CredentialKind::Token => "token",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebCall {
    /// The caller's one-time login ticket (`vigie web login`).
    Login,
    /// A new API token of the caller's, valid `valid_ms`
    /// (`vigie tokens create`); its secret is shown once.
    TokenCreate { valid_ms: u64, label: String },
    /// The caller's own sessions and tokens (never their secrets).
    Credentials,
    /// Ends one of the caller's own sessions or tokens.
    Revoke { id: String },
    /// The tower only (the web daemon): exchanges a ticket for a session
    /// valid `valid_ms`; a ticket is spent by its first redemption.
    Redeem { ticket: String, valid_ms: u64 },
    /// The tower only: who holds this session or token secret, with the
    /// operator's current record (a revoked operator or a rotated key holds
    /// nothing any more).
    Authenticate { secret: String },
    /// The tower only: where the web daemon listens, for login URLs.
    Announce { url: String },
}

impl WebCall {
    /// Calls an operator makes about her own credentials: they need no
    /// grant beyond being an active operator.
    pub fn own(&self) -> bool {
        matches!(
            self,
            WebCall::Login
                | WebCall::TokenCreate { .. }
                | WebCall::Credentials
                | WebCall::Revoke { .. }
        )
    }

    pub fn mutates(&self) -> bool {
        !matches!(self, WebCall::Credentials | WebCall::Authenticate { .. })
    }
}

/// A credential as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialView {
    pub id: String,
    pub kind: CredentialKind,
    pub label: String,
    pub created_ms: u64,
    pub expires_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WebAnswer {
    /// A new credential and its secret, said once. `url`: the console's
    /// address when the web daemon announced one.
    Issued {
        view: CredentialView,
        secret: String,
        url: Option<String>,
    },
    Credentials(Vec<CredentialView>),
    /// Who holds a secret (for `Authenticate` and `Redeem`).
    Holder {
        view: CredentialView,
        operator: crate::access::OperatorRecord,
    },
}
