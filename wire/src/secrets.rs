//! Deploy secrets (issue 19): a value an environment's services read from
//! their env file, set by an operator (`vigie secrets set`), kept
//! encrypted by the referee, and sealed for one host's agent key on its
//! way there (an X25519 sealed box: only that agent opens it). A value is
//! a [`Secret`], which never prints itself; what travels and is shown is
//! its name, version, when and by whom.

use serde::{Deserialize, Serialize};

/// A secret's value: its `Debug` and `Display` print `[redacted]`, so a
/// log line, an error or a `{:?}` of a message holding one never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret(#[serde(with = "serde_bytes")] Vec<u8>);

impl Secret {
    pub fn new(value: Vec<u8>) -> Self {
        Self(value)
    }

    /// The value itself: for the one place that writes it (the replica's
    /// env file) or encrypts it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Not a guarantee (copies may have been made), but this one goes.
        self.0.iter_mut().for_each(|b| *b = 0);
    }
}

/// A secret's name: 1 to 64 of `a-z`, `0-9`, `_`, `-`, starting with a
/// letter (one grammar for `vigie secrets` and `environment.yml`).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 64
        && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a secret name (1 to 64 of a-z, 0-9, _ and -, starting with a letter)"
        ))
    }
}

/// Most bytes of one secret's value.
pub const MAX_SECRET_BYTES: usize = 64 * 1024;

/// One variable of an env file whose value is a secret: which secret
/// (`name` of the change's environment), and once the referee sealed it
/// for the host's agent, `sealed` (empty until then).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedVar {
    /// The variable the replica reads (`DB_PASSWORD`).
    pub var: String,
    /// The secret's name (`db_password`).
    pub name: String,
    /// The version sealed (0 until sealed).
    pub version: u32,
    #[serde(with = "serde_bytes")]
    pub sealed: Vec<u8>,
}

/// Why a sealed value could not be opened or sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("the sealed value does not open with this agent's key")]
    Open,
    #[error("the value could not be sealed")]
    Seal,
}

/// Seals `value` for the holder of the X25519 secret key matching
/// `public` (a CURVE key: the same curve, the same bytes).
/// An agent's CURVE public key (Z85 text, as the key registry holds it)
/// as the X25519 key a value is sealed for; `None` when it is not one.
pub fn decode_public(z85: &str) -> Option<[u8; 32]> {
    z85::decode(z85.trim()).ok()?.try_into().ok()
}

pub fn seal(public: &[u8; 32], value: &Secret) -> Result<Vec<u8>, SealError> {
    let key = crypto_box::PublicKey::from(*public);
    key.seal(&mut crypto_box::aead::OsRng, value.expose())
        .map_err(|_| SealError::Seal)
}

/// Opens what [`seal`] sealed for this key.
pub fn open(secret: &[u8; 32], sealed: &[u8]) -> Result<Secret, SealError> {
    let key = crypto_box::SecretKey::from(*secret);
    key.unseal(sealed)
        .map(Secret::new)
        .map_err(|_| SealError::Open)
}

/// An operator's calls on an environment's secrets (verb
/// `secrets.admin`; `Versions` is the deploy daemon's alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretsCall {
    /// Sets (or rotates) a secret; a deployed environment whose services
    /// read it is restarted (a rollout, as the caller).
    Set {
        app: String,
        environment: String,
        name: String,
        value: Secret,
    },
    List {
        app: String,
        environment: String,
    },
    Remove {
        app: String,
        environment: String,
        name: String,
    },
    /// The tower's deploy daemon only: every secret's current version in
    /// a tenant's environment (what a plan is made from).
    Versions {
        tenant: String,
        app: String,
        environment: String,
    },
}

impl SecretsCall {
    pub fn mutates(&self) -> bool {
        matches!(self, SecretsCall::Set { .. } | SecretsCall::Remove { .. })
    }
}

/// What is shown of a secret: never its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub name: String,
    pub version: u32,
    pub set_ms: u64,
    pub set_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SecretsAnswer {
    /// Stored as `version`; `restart` is the rollout that restarts the
    /// environment's replicas, when one was started.
    Set {
        version: u32,
        restart: Option<String>,
        /// Why no restart was started, when the environment uses it.
        note: Option<String>,
    },
    List(Vec<SecretInfo>),
    Removed,
    Versions(std::collections::BTreeMap<String, u32>),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints_its_value() {
        let s = Secret::new(b"hunter2-value".to_vec());
        assert_eq!(format!("{s}"), "[redacted]");
        assert_eq!(format!("{s:?}"), "[redacted]");
        let call = SecretsCall::Set {
            app: "shop".into(),
            environment: "prod".into(),
            name: "db".into(),
            value: s,
        };
        let shown = format!("{call:?} {call:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn only_the_key_it_was_sealed_for_opens_it() {
        let mine = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let other = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
        let public = mine.public_key().to_bytes();
        let value = Secret::new(b"s3cret".to_vec());
        let sealed = seal(&public, &value).expect("sealed");
        assert!(!sealed.windows(6).any(|w| w == b"s3cret"));
        assert_eq!(open(&mine.to_bytes(), &sealed), Ok(value.clone()));
        assert_eq!(open(&other.to_bytes(), &sealed), Err(SealError::Open));
        let mut tampered = sealed.clone();
        if let Some(last) = tampered.last_mut() {
            *last ^= 1;
        }
        assert_eq!(open(&mine.to_bytes(), &tampered), Err(SealError::Open));
        // Each seal is fresh (an ephemeral key): two seals differ.
        assert_ne!(seal(&public, &value).expect("sealed"), sealed);
    }
}
