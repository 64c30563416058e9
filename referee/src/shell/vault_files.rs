//! The files of deploy secrets (issue 19): the tower's key for secrets at
//! rest (`DATA/keys/secrets.key`, made here at the first start), the
//! setup hosts' public sealing keys (`--seal-key HOST=FILE`), and the
//! Z85 text of an agent's key read as the X25519 key it is.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::core::vault::{Vault, VaultKey};
use crate::error::RefereeError;

/// A CURVE public key (Z85, 40 characters) as its 32 bytes.
pub(crate) use vigie_wire::secrets::decode_public;

/// The key in `path`, made (0600, whole or not at all) when absent.
pub fn load_or_make(path: &Path) -> Result<VaultKey, RefereeError> {
    let bad = |e: &dyn std::fmt::Display| RefereeError::Vault(format!("{}: {e}", path.display()));
    if !path.exists() {
        let made = VaultKey::generate();
        let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| bad(&e))?;
        f.write_all(&made.to_bytes()).map_err(|e| bad(&e))?;
        f.sync_all().map_err(|e| bad(&e))?;
        // A link never replaces: two starts at once agree on one key.
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        if let Err(e) = linked {
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(bad(&e));
            }
        }
    }
    let bytes = std::fs::read(path).map_err(|e| bad(&e))?;
    let key: [u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| bad(&"not a 32-byte key"))?;
    Ok(VaultKey::from_bytes(key))
}

/// The vault's key (made at the first start) and the setup hosts'
/// sealing keys; a host whose key file is unreadable gets no secrets.
pub(crate) fn configure(
    vault: &mut Vault,
    secrets_key: Option<&Path>,
    seal_keys: &[(String, std::path::PathBuf)],
) -> Result<(), RefereeError> {
    if let Some(path) = secrets_key {
        vault.set_key(load_or_make(path)?);
    }
    for (host, path) in seal_keys {
        let key = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| decode_public(&t));
        match key {
            Some(k) => vault.set_host_key(host.clone(), k),
            None => {
                tracing::warn!(event = "seal_key_unreadable", host = %host, path = %path.display())
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_file_is_made_once_private_and_read_back() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("secrets.key");
        let made = load_or_make(&path).expect("made");
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_make(&path).expect("read");
        assert_eq!(made.to_bytes(), again.to_bytes());
        let debug = format!("{made:?}");
        assert_eq!(debug, "VaultKey([redacted])");
    }
}
