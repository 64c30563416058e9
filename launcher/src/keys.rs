//! The tower's Curve25519 key pair, made at first start (never shipped in
//! the repository): `keys/tower.secret` (mode 0600) and `keys/tower.public`,
//! both Z85 text as ZeroMQ's CURVE options take them.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use vigie_majordomo::keys::{z85, KeyPair};

use crate::error::LauncherError;

#[derive(Debug, Clone)]
pub struct TowerKeys {
    pub public_z85: String,
    pub secret_path: PathBuf,
    /// Whether this call created them.
    pub created: bool,
}

/// Where a setup host's plug keeps the key its secrets are sealed for
/// (`DATA/plugs/<id>/seal.key`, 0600; the public key beside it, `.pub`).
pub fn plug_seal_key(data: &Path, host: &str) -> PathBuf {
    data.join("plugs").join(host).join("seal.key")
}

/// Makes each setup host's sealing key pair unless it exists: a local
/// plug has no CURVE key of its own, and the referee seals deploy
/// secrets for a host's key only (see `referee/src/secrets.rs`).
pub fn ensure_plug_keys(data: &Path, hosts: &[String]) -> Result<(), LauncherError> {
    for host in hosts {
        let path = plug_seal_key(data, host);
        let dir = path.parent().unwrap_or(data);
        vigie_escalator::ensure_private_dir(dir).map_err(|e| LauncherError::io(dir, e))?;
        if path.exists() && vigie_majordomo::keys::public_path(&path).exists() {
            continue;
        }
        let _ = fs::remove_file(&path);
        vigie_majordomo::keys::write_new(&path)
            .map_err(|e| LauncherError::io(&path, std::io::Error::other(e.to_string())))?;
    }
    Ok(())
}

/// Creates the key pair under `data/keys` unless it exists; returns it.
pub fn ensure_tower_keys(data: &Path) -> Result<TowerKeys, LauncherError> {
    let dir = data.join("keys");
    let secret_path = dir.join("tower.secret");
    let public_path = dir.join("tower.public");
    vigie_escalator::ensure_private_dir(&dir).map_err(|e| LauncherError::io(&dir, e))?;
    if secret_path.exists() && public_path.exists() {
        let public_z85 = fs::read_to_string(&public_path)
            .map_err(|e| LauncherError::io(&public_path, e))?
            .trim()
            .to_owned();
        return Ok(TowerKeys {
            public_z85,
            secret_path,
            created: false,
        });
    }
    vigie_escalator::ensure_private_dir(&dir).map_err(|e| LauncherError::io(&dir, e))?;
    let pair = KeyPair::generate();
    let public_z85 = pair.public_z85();
    // Written under a temporary name then renamed: a crash never leaves a
    // half-written secret behind.
    let tmp = dir.join("tower.secret.tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| LauncherError::io(&tmp, e))?;
    f.write_all(z85(&pair.secret).as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| LauncherError::io(&tmp, e))?;
    fs::rename(&tmp, &secret_path).map_err(|e| LauncherError::io(&secret_path, e))?;
    fs::write(&public_path, format!("{public_z85}\n"))
        .map_err(|e| LauncherError::io(&public_path, e))?;
    Ok(TowerKeys {
        public_z85,
        secret_path,
        created: true,
    })
}

/// The admin operator made at the tower's first start: its key pair
/// (`keys/admin.key`, `keys/admin.key.pub`) and a CLI config for it
/// (`operator.yml`), so the local CLI talks through the majordomo like any
/// operator's.
#[derive(Debug, Clone)]
pub struct AdminKeys {
    pub public_z85: String,
    pub public_path: PathBuf,
    pub config: vigie_majordomo::operator::OperatorConfig,
    pub config_path: PathBuf,
    pub created: bool,
}

pub fn admin_public_path(data: &Path) -> PathBuf {
    vigie_majordomo::keys::public_path(&data.join("keys").join("admin.key"))
}

/// The majordomo's endpoint as a client on this machine reaches it.
fn local_endpoint(bind: &str) -> String {
    bind.replace("://0.0.0.0:", "://127.0.0.1:")
        .replace("://*:", "://127.0.0.1:")
}

pub fn ensure_admin(
    data: &Path,
    tower: &TowerKeys,
    majordomo: &str,
) -> Result<AdminKeys, LauncherError> {
    let secret = data.join("keys").join("admin.key");
    let public_path = admin_public_path(data);
    let created = !secret.exists();
    let public_z85 = if created {
        vigie_majordomo::keys::write_new(&secret)
            .map_err(|e| LauncherError::io(&secret, std::io::Error::other(e.to_string())))?
            .public_z85()
    } else {
        vigie_majordomo::keys::read_secret(&secret)
            .map_err(|e| LauncherError::io(&secret, std::io::Error::other(e.to_string())))?
            .public_z85()
    };
    let identity = fs::canonicalize(&secret).map_err(|e| LauncherError::io(&secret, e))?;
    let config = vigie_majordomo::operator::OperatorConfig {
        tower: local_endpoint(majordomo),
        tower_key: tower.public_z85.clone(),
        identity,
    };
    let config_path = data.join("operator.yml");
    config
        .write(&config_path)
        .map_err(|e| LauncherError::io(&config_path, std::io::Error::other(e.to_string())))?;
    Ok(AdminKeys {
        public_z85,
        public_path,
        config,
        config_path,
        created,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keys_are_made_once_with_a_private_secret() {
        let dir = tempfile::tempdir().unwrap();
        let k = ensure_tower_keys(dir.path()).unwrap();
        assert!(k.created);
        assert_eq!(k.public_z85.len(), 40);
        let mode = fs::metadata(&k.secret_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = ensure_tower_keys(dir.path()).unwrap();
        assert!(!again.created);
        assert_eq!(again.public_z85, k.public_z85);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(
            ensure_tower_keys(other.path()).unwrap().public_z85,
            k.public_z85
        );
    }
}
