//! Secrets at rest (issue 19): each value encrypted with the tower's key
//! (`DATA/keys/secrets.key`, 32 random bytes, 0600, made at the first
//! start by `shell/vault_files.rs`) by XChaCha20-Poly1305, a fresh nonce per value, the record's
//! place (`tenant/app/env/name/version`) as associated data — a
//! ciphertext moved to another record does not open. The store (Escalator,
//! LevelDB) only ever holds ciphertext; the value is clear only in the
//! referee's memory while it seals it for a host.

use std::collections::HashMap;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use vigie_wire::secrets::Secret;

use crate::core::table::Table;
use crate::core::turn::Turn;
use crate::error::RefereeError;

pub(crate) const PREFIX: &str = "secret/";

/// Where a secret is stored: `secret/<tenant>/<app>/<env>/<name>`.
pub(crate) fn secret_key(tenant: &str, app: &str, env: &str, name: &str) -> String {
    format!("{PREFIX}{tenant}/{app}/{env}/{name}")
}

/// The tower's key for secrets at rest.
#[derive(Clone)]
pub struct VaultKey(chacha20poly1305::Key);

impl std::fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VaultKey([redacted])")
    }
}

impl VaultKey {
    pub fn generate() -> Self {
        Self(XChaCha20Poly1305::generate_key(&mut OsRng))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes.into())
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.into()
    }
}

/// A secret as stored: who set which version when, and its ciphertext.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredSecret {
    pub tenant: String,
    pub app: String,
    pub environment: String,
    pub name: String,
    pub version: u32,
    pub set_ms: u64,
    pub set_by: String,
    #[serde(with = "serde_bytes")]
    pub nonce: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

impl StoredSecret {
    fn place(&self) -> String {
        format!(
            "{}/{}/{}/{}/{}",
            self.tenant, self.app, self.environment, self.name, self.version
        )
    }

    /// Encrypts `value` into this record (its place fields already set).
    pub fn seal_at_rest(&mut self, key: &VaultKey, value: &Secret) -> Result<(), RefereeError> {
        let cipher = XChaCha20Poly1305::new(&key.0);
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let place = self.place();
        self.ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: value.expose(),
                    aad: place.as_bytes(),
                },
            )
            .map_err(|_| RefereeError::Vault("encryption failed".into()))?;
        self.nonce = nonce.to_vec();
        Ok(())
    }

    /// The value, if this record opens with `key` at its own place.
    pub fn open(&self, key: &VaultKey) -> Result<Secret, RefereeError> {
        let cipher = XChaCha20Poly1305::new(&key.0);
        if self.nonce.len() != 24 {
            return Err(RefereeError::Vault(format!("{}: bad nonce", self.place())));
        }
        let place = self.place();
        cipher
            .decrypt(
                XNonce::from_slice(&self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: place.as_bytes(),
                },
            )
            .map(Secret::new)
            .map_err(|_| {
                RefereeError::Vault(format!("{place}: does not open with the tower's key"))
            })
    }
}

/// Why a secret did not open.
#[derive(Debug)]
pub enum OpenError {
    NotSet,
    /// The referee was started without `--secrets-key`.
    NoKey,
    Vault(RefereeError),
}

/// The secrets the referee keeps: their records (ciphertext) and what it
/// seals with.
#[derive(Debug)]
pub struct Vault {
    /// `None`: the referee was started without `--secrets-key`.
    key: Option<VaultKey>,
    rows: Table<String, StoredSecret>,
    /// The setup's local plugs' sealing keys (agents' are in the registry).
    host_keys: HashMap<String, [u8; 32]>,
}

impl Vault {
    /// The vault a start rebuilt from its records (`shell/load.rs`).
    pub fn loaded(records: HashMap<Vec<u8>, StoredSecret>) -> Self {
        let rows = records
            .into_iter()
            .map(|(k, rec)| (String::from_utf8_lossy(&k).into_owned(), rec))
            .collect();
        Self {
            key: None,
            rows: Table::loaded(rows, |k| k.as_bytes().to_vec()),
            host_keys: HashMap::new(),
        }
    }

    /// The tower's key for secrets at rest (`None`: it keeps none).
    pub fn key(&self) -> Option<&VaultKey> {
        self.key.as_ref()
    }

    /// Gives the vault the tower's key (`shell/vault_files.rs`, at start).
    pub fn set_key(&mut self, key: VaultKey) {
        self.key = Some(key);
    }

    /// A setup host's sealing key (a local plug's, from the setup).
    pub fn host_key(&self, host: &str) -> Option<[u8; 32]> {
        self.host_keys.get(host).copied()
    }

    /// Takes a setup host's sealing key (`--seal-key HOST=FILE`).
    pub fn set_host_key(&mut self, host: String, key: [u8; 32]) {
        self.host_keys.insert(host, key);
    }

    /// The secret stored at `key` (`secret_key`).
    pub fn get(&self, key: &str) -> Option<&StoredSecret> {
        self.rows.get(key)
    }

    /// Stores a secret (a new version) at `key`.
    pub fn put(&mut self, turn: &mut Turn, key: String, rec: StoredSecret) {
        self.rows.put(turn, key, rec);
    }

    /// Forgets the secret at `key`, if any.
    pub fn remove(&mut self, turn: &mut Turn, key: &str) -> Option<StoredSecret> {
        self.rows.remove(turn, &key.to_owned())
    }

    /// The current value and version of secret `name` of `app/env` in
    /// `tenant`.
    pub fn open_secret(
        &self,
        tenant: &str,
        app: &str,
        env: &str,
        name: &str,
    ) -> Result<(Secret, u32), OpenError> {
        let rec = self
            .rows
            .get(&secret_key(tenant, app, env, name))
            .ok_or(OpenError::NotSet)?;
        let key = self.key.as_ref().ok_or(OpenError::NoKey)?;
        let value = rec.open(key).map_err(OpenError::Vault)?;
        Ok((value, rec.version))
    }

    pub(crate) fn of_env<'a>(
        &'a self,
        tenant: &'a str,
        app: &'a str,
        env: &'a str,
    ) -> impl Iterator<Item = &'a StoredSecret> + 'a {
        self.rows
            .values()
            .filter(move |s| s.tenant == tenant && s.app == app && s.environment == env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> StoredSecret {
        StoredSecret {
            tenant: "acme".into(),
            app: "shop".into(),
            environment: "prod".into(),
            name: "db_password".into(),
            version: 1,
            set_ms: 0,
            set_by: "admin".into(),
            nonce: Vec::new(),
            ciphertext: Vec::new(),
        }
    }

    #[test]
    fn a_value_at_rest_is_ciphertext_that_opens_only_with_the_key_at_its_place() {
        let key = VaultKey::generate();
        let mut rec = record();
        rec.seal_at_rest(&key, &Secret::new(b"correct horse".to_vec()))
            .expect("sealed");
        let stored = crate::core::codec::encode(&rec);
        assert!(!stored.windows(13).any(|w| w == b"correct horse"));
        assert_eq!(rec.open(&key).expect("opens").expose(), b"correct horse");
        assert!(rec.open(&VaultKey::generate()).is_err());
        // Moved to another secret's place, it does not open.
        let mut moved = rec.clone();
        moved.name = "other".into();
        assert!(moved.open(&key).is_err());
        let mut older = rec;
        older.version = 2;
        assert!(older.open(&key).is_err());
    }
}
