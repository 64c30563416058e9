//! Who may talk to the tower and do what: agents' keys as the registry
//! keeps them, operators with their grants, the verbs granted, and the
//! unknown keys that knocked at the door.

use serde::{Deserialize, Serialize};

use crate::ids::HostId;

/// An unknown key seen at the door, and where from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Knock {
    pub public: String,
    pub address: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyState {
    /// Seen at the door, not admitted: an operator must accept it.
    Pending,
    Accepted,
    Revoked,
}

impl KeyState {
    pub fn word(self) -> &'static str {
        match self {
            KeyState::Pending => "pending",
            KeyState::Accepted => "accepted",
            KeyState::Revoked => "revoked",
        }
    }
}

/// A Curve25519 public key the tower knows, and for which host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Z85 text (40 characters).
    pub public: String,
    /// Empty while pending: a handshake does not say which host a key is for.
    pub host: HostId,
    pub tenant: String,
    pub state: KeyState,
    /// Where it was last seen knocking (pending keys).
    pub address: String,
}

/// The PUB topic of key registry changes (host ids never start with '@').
pub const KEYS_TOPIC: &[u8] = b"@keys\0";

/// What an operator may do; each is granted over a host scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Verb {
    ChangesSubmit,
    ChangesCancel,
    ChangesRead,
    HostsRead,
    /// Register hosts, add, accept and revoke their agents' keys.
    HostsAdmin,
    AuditRead,
    /// Add, list and revoke the operators of one's own tenant.
    OperatorsAdmin,
    /// Act in any tenant (create tenants and their operators).
    TenantsAdmin,
    /// See the server catalog and its import sessions.
    ServersRead,
    /// Import servers, pin their host keys, ask for their provisioning
    /// (which registers hosts: `HostsAdmin` over them too).
    ServersAdmin,
    /// Make IP pools, allocate and release addresses.
    IpsAdmin,
    /// See the application catalog.
    AppsRead,
    /// Add applications to the catalog.
    AppsAdmin,
    /// Read hosts' logs (steps' output, services' stdout/stderr).
    LogsRead,
    /// Deploy an application's environments (`deploy@shop/prod`).
    Deploy,
}

impl Verb {
    pub const ALL: [Verb; 15] = [
        Verb::ChangesSubmit,
        Verb::ChangesCancel,
        Verb::ChangesRead,
        Verb::HostsRead,
        Verb::HostsAdmin,
        Verb::AuditRead,
        Verb::OperatorsAdmin,
        Verb::TenantsAdmin,
        Verb::ServersRead,
        Verb::ServersAdmin,
        Verb::IpsAdmin,
        Verb::AppsRead,
        Verb::AppsAdmin,
        Verb::LogsRead,
        Verb::Deploy,
    ];

    /// The stable name: `changes.submit`, …
    pub fn word(self) -> &'static str {
        match self {
            Verb::ChangesSubmit => "changes.submit",
            Verb::ChangesCancel => "changes.cancel",
            Verb::ChangesRead => "changes.read",
            Verb::HostsRead => "hosts.read",
            Verb::HostsAdmin => "hosts.admin",
            Verb::AuditRead => "audit.read",
            Verb::OperatorsAdmin => "operators.admin",
            Verb::TenantsAdmin => "tenants.admin",
            Verb::ServersRead => "servers.read",
            Verb::ServersAdmin => "servers.admin",
            Verb::IpsAdmin => "ips.admin",
            Verb::AppsRead => "apps.read",
            Verb::AppsAdmin => "apps.admin",
            Verb::LogsRead => "logs.read",
            Verb::Deploy => "deploy",
        }
    }

    pub fn parse(word: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.word() == word)
    }
}

/// A verb over a scope: the hosts a selector matches (`*`, `web-*`,
/// `web-1,web-2`, `role=web`) or an application's environments
/// (`shop/prod`, `shop/*`, `app=shop`: `vigie_changes::GrantScope` reads
/// it). Calls without a host (operators, tenants) only look at the verb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub verb: Verb,
    pub scope: String,
}

impl Grant {
    /// `VERB` (every host) or `VERB@SCOPE`, e.g. `changes.submit@web-*`.
    pub fn parse(text: &str) -> Result<Grant, String> {
        let (verb, scope) = text.split_once('@').unwrap_or((text, "*"));
        let verb = Verb::parse(verb.trim()).ok_or_else(|| {
            let known: Vec<&str> = Verb::ALL.iter().map(|v| v.word()).collect();
            format!(
                "unknown permission {verb:?} in {text:?}: one of {}",
                known.join(", ")
            )
        })?;
        let scope = scope.trim();
        if scope.is_empty() {
            return Err(format!("empty host scope in {text:?}"));
        }
        Ok(Grant {
            verb,
            scope: scope.to_owned(),
        })
    }
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.verb.word(), self.scope)
    }
}

/// An operator: a person using the tower, in one tenant, with a key and
/// permissions. Names are unique within a tenant; keys in the tower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorRecord {
    pub name: String,
    pub tenant: String,
    /// Z85 Curve25519 public key.
    pub public: String,
    pub grants: Vec<Grant>,
    pub revoked: bool,
}

impl OperatorRecord {
    /// The scopes over which this operator holds `verb`.
    pub fn scopes(&self, verb: Verb) -> Vec<String> {
        self.grants
            .iter()
            .filter(|g| g.verb == verb)
            .map(|g| g.scope.clone())
            .collect()
    }
}
