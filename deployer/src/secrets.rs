//! Secrets in an environment (issue 19): `env: { DB_PASSWORD: { secret:
//! db_password } }` names a secret of the environment, set apart with
//! `vigie secrets set`. A plan pins each secret's current version into
//! its service's spec (part of the digest: setting a secret again bumps
//! the services that read it, and their replicas are replaced); a
//! replica's env file becomes a `SecretFile` step that names the secrets
//! and carries no value: the referee seals each value for the host's
//! agent when the change is submitted, and only that agent opens it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;
use vigie_wire::change::{Action, Step};
use vigie_wire::secrets::SealedVar;

use crate::error::DeployError;
use crate::plan::ServicePlan;
use crate::spec::Environment;

/// A variable's value in `environment.yml`: written there, or a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// Serialised as the bare text, so a spec without secrets keeps the
    /// digest it had before secrets existed.
    Plain(String),
    /// `version` is 0 until a plan pins the secret's current one.
    Secret { secret: String, version: u32 },
}

/// `env:`'s value as read: one line of text, or `{ secret: NAME }`.
#[derive(Debug, Clone)]
pub(crate) struct RawEnvValue(pub EnvValue);

impl<'de> Deserialize<'de> for RawEnvValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = RawEnvValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a one-line string or { secret: NAME }")
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<RawEnvValue, E> {
        crate::values::one_line(text)
            .map(|t| RawEnvValue(EnvValue::Plain(t)))
            .map_err(E::custom)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<RawEnvValue, E> {
        Ok(RawEnvValue(EnvValue::Plain(v.to_string())))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<RawEnvValue, E> {
        Ok(RawEnvValue(EnvValue::Plain(v.to_string())))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<RawEnvValue, E> {
        Ok(RawEnvValue(EnvValue::Plain(v.to_string())))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEnvValue, A::Error> {
        use serde::de::Error;
        let mut name = None;
        while let Some(key) = map.next_key::<String>()? {
            if key != "secret" || name.is_some() {
                return Err(A::Error::custom(format!(
                    "unknown or repeated key {key:?}: a secret is {{ secret: NAME }}"
                )));
            }
            let value: String = map.next_value()?;
            vigie_wire::secrets::check_name(&value).map_err(A::Error::custom)?;
            name = Some(value);
        }
        let secret = name.ok_or_else(|| A::Error::custom("a secret is { secret: NAME }"))?;
        Ok(RawEnvValue(EnvValue::Secret { secret, version: 0 }))
    }
}

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
                    *version = *versions
                        .get(secret.as_str())
                        .ok_or_else(|| DeployError::SecretNotSet {
                            environment: self.key.to_string(),
                            name: secret.clone(),
                        })?;
                }
            }
        }
        Ok(pinned)
    }
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
    let secrets: Vec<SealedVar> = service
        .spec
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
        .collect();
    if secrets.is_empty() {
        return crate::compile::file(name, path, text, 0o600);
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
