//! Deploy secrets' calls (`ApiCall::Secrets`), typed like the others. A
//! value goes as a [`Secret`]: it never prints itself.

use std::collections::BTreeMap;

use vigie_wire::secrets::{Secret, SecretInfo, SecretsAnswer, SecretsCall};
use vigie_wire::tower::{ApiAnswer, ApiCall};

use super::Call;

/// What setting a secret did: its new version, the rollout restarting
/// the environment's replicas, or why none was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSet {
    pub version: u32,
    pub restart: Option<String>,
    pub note: Option<String>,
}

call!(
    /// Sets (or rotates) a secret of an environment.
    Set { app: String, environment: String, name: String, value: Secret }
        => ApiCall::Secrets(SecretsCall::Set { app, environment, name, value }), SecretSet,
        ApiAnswer::Secrets(SecretsAnswer::Set { version, restart, note }) => SecretSet { version, restart, note }
);
call!(
    /// An environment's secrets: names, versions, when and by whom.
    List { app: String, environment: String }
        => ApiCall::Secrets(SecretsCall::List { app, environment }), Vec<SecretInfo>,
        ApiAnswer::Secrets(SecretsAnswer::List(v)) => v
);
call!(
    /// Removes a secret.
    Remove { app: String, environment: String, name: String }
        => ApiCall::Secrets(SecretsCall::Remove { app, environment, name }), (),
        ApiAnswer::Secrets(SecretsAnswer::Removed) => ()
);
call!(
    /// The deploy daemon's: every secret's version in an environment.
    Versions { tenant: String, app: String, environment: String }
        => ApiCall::Secrets(SecretsCall::Versions { tenant, app, environment }), BTreeMap<String, u32>,
        ApiAnswer::Secrets(SecretsAnswer::Versions(v)) => v
);
