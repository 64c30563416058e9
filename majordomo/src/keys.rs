//! Curve25519 key files: the secret as Z85 text in a file created 0600, the
//! public key beside it (`<file>.pub`). Made here, never shipped.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use x25519_dalek::{PublicKey, StaticSecret};

use crate::error::MajordomoError;

#[derive(Clone)]
pub struct KeyPair {
    pub secret: [u8; 32],
    pub public: [u8; 32],
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyPair {{ public: {} }}", self.public_z85())
    }
}

impl KeyPair {
    pub fn generate() -> Self {
        let secret = StaticSecret::random();
        let public = PublicKey::from(&secret);
        Self {
            secret: secret.to_bytes(),
            public: public.to_bytes(),
        }
    }

    pub fn public_z85(&self) -> String {
        z85(&self.public)
    }
}

pub fn z85(bytes: &[u8; 32]) -> String {
    // 32 bytes is a multiple of 4: encoding cannot fail.
    zmq::z85_encode(bytes).unwrap_or_default()
}

/// Decodes a Z85 key (40 characters) into its 32 bytes.
pub fn from_z85(text: &str) -> Option<[u8; 32]> {
    let bytes = zmq::z85_decode(text.trim()).ok()?;
    bytes.try_into().ok()
}

fn key_err(path: &Path, reason: impl Into<String>) -> MajordomoError {
    MajordomoError::Key {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

pub fn public_path(secret: &Path) -> PathBuf {
    let mut p = secret.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

/// Writes a new key pair: `path` (secret, 0600, refused if it exists) and
/// `path.pub`.
pub fn write_new(path: &Path) -> Result<KeyPair, MajordomoError> {
    let pair = KeyPair::generate();
    let mut f = OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| key_err(path, e.to_string()))?;
    f.write_all(z85(&pair.secret).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| key_err(path, e.to_string()))?;
    let public = public_path(path);
    fs::write(&public, format!("{}\n", pair.public_z85()))
        .map_err(|e| key_err(&public, e.to_string()))?;
    Ok(pair)
}

/// Reads a secret key file; the public key is derived from it.
pub fn read_secret(path: &Path) -> Result<KeyPair, MajordomoError> {
    let text = fs::read_to_string(path).map_err(|e| key_err(path, e.to_string()))?;
    let secret =
        from_z85(&text).ok_or_else(|| key_err(path, "not a Z85 secret key (40 characters)"))?;
    let public = PublicKey::from(&StaticSecret::from(secret)).to_bytes();
    Ok(KeyPair { secret, public })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_reads_back_with_its_public_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.key");
        let pair = write_new(&path).unwrap();
        let back = read_secret(&path).unwrap();
        assert_eq!(back.public, pair.public);
        let public = fs::read_to_string(public_path(&path)).unwrap();
        assert_eq!(public.trim(), pair.public_z85());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(write_new(&path).is_err(), "never overwrites a key");
    }
}
