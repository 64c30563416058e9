//! Secrets in an environment (issue 19): `env: { DB_PASSWORD: { secret:
//! db_password } }` names a secret of the environment, set apart with
//! `vigie secrets set`. A plan pins each secret's current version into
//! its service's spec (part of the digest: setting a secret again bumps
//! the services that read it, and their replicas are replaced); a
//! replica's env file becomes a `SecretFile` step that names the secrets
//! and carries no value: the referee seals each value for the host's
//! agent when the change is submitted, and only that agent opens it.

use std::collections::{BTreeMap, BTreeSet};

use vigie_wire::change::{Action, Step};
use vigie_wire::secrets::SealedVar;

use crate::env_value::EnvValue;
use crate::error::DeployError;
use crate::plan::ServicePlan;
use crate::spec::{Environment, Service};

impl Environment {
    /// Every secret its services read.
    pub fn secret_names(&self) -> BTreeSet<String> {
        self.services
            .values()
            .flat_map(|s| s.env.values())
            .filter_map(|v| match v {
                EnvValue::Secret { secret, .. } => Some(secret.clone()),
                EnvValue::Plain(_) => None,
            })
            .collect()
    }

    /// This environment with each secret's current version (`versions`,
    /// the tower's); a secret that is not set refuses the deploy, by name.
    pub fn pin_secrets(&self, versions: &BTreeMap<String, u32>) -> Result<Self, DeployError> {
        let mut pinned = self.clone();
        for service in pinned.services.values_mut() {
            for value in service.env.values_mut() {
                if let EnvValue::Secret { secret, version } = value {
                    *version = *versions.get(secret.as_str()).ok_or_else(|| {
                        DeployError::SecretNotSet {
                            environment: self.key.to_string(),
                            name: secret.clone(),
                        }
                    })?;
                }
            }
        }
        Ok(pinned)
    }
}

/// The variables of `service` that are secrets, each naming its secret
/// (sealed by the referee at submission: empty here).
pub(crate) fn secret_vars(service: &Service) -> Vec<SealedVar> {
    service
        .env
        .iter()
        .filter_map(|(var, value)| match value {
            EnvValue::Secret { secret, version } => Some(SealedVar {
                var: var.clone(),
                name: secret.clone(),
                version: *version,
                sealed: Vec::new(),
            }),
            EnvValue::Plain(_) => None,
        })
        .collect()
}

/// The step writing an env file of `service` (a replica's, the
/// migrations'): `text` (its plain variables) as a `File` when the
/// service reads no secret, else a `SecretFile` naming the secrets.
pub(crate) fn env_step(
    name: String,
    path: String,
    text: String,
    env: &Environment,
    service: &ServicePlan,
) -> Step {
    let secrets = secret_vars(&service.spec);
    if secrets.is_empty() {
        return Step {
            name,
            action: Action::File {
                path,
                content: text.into_bytes(),
                mode: Some(0o600),
            },
        };
    }
    Step {
        name,
        action: Action::SecretFile {
            path,
            environment: env.key.to_string(),
            content: text.into_bytes(),
            secrets,
        },
    }
}
