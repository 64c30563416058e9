//! A variable's value in `environment.yml` (issue 19): one line of
//! text, or `{ secret: NAME }` — a secret of the environment, its value
//! kept by the tower (see `secrets.rs`). Read in its own visitor, so an
//! error carries its line.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;

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
