//! The tower's own SSH key pair for provisioning, made at first start by
//! OpenSSH's `ssh-keygen` in `DATA/provisioner/` (secret 0600, never in
//! the repository). Its public half is what the operator gives suppliers
//! to install for the servers' SSH user (`vigie servers ssh-key`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::ProvisionError;

/// `DATA/provisioner`: the key pair and the per-server known_hosts files.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("provisioner")
}

pub fn secret_path(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("id_ed25519")
}

pub fn public_path(data_dir: &Path) -> PathBuf {
    dir(data_dir).join("id_ed25519.pub")
}

/// Makes the key pair unless it exists; returns the secret key's path.
pub fn ensure(data_dir: &Path) -> Result<PathBuf, ProvisionError> {
    let d = dir(data_dir);
    std::fs::create_dir_all(&d).map_err(|e| ProvisionError::io(&d, e))?;
    let secret = secret_path(data_dir);
    if secret.exists() && public_path(data_dir).exists() {
        return Ok(secret);
    }
    // A half-made pair (a crash in ssh-keygen) is made again.
    let _ = std::fs::remove_file(&secret);
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "vigie-provisioner",
            "-f",
        ])
        .arg(&secret)
        .output()
        .map_err(|e| ProvisionError::Config(format!("running ssh-keygen (openssh-client): {e}")))?;
    if !out.status.success() {
        return Err(ProvisionError::Config(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(secret)
}

/// The public key, one `ssh-ed25519 AAAA… vigie-provisioner` line.
pub fn public(data_dir: &Path) -> Result<String, ProvisionError> {
    let p = public_path(data_dir);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_owned())
        .map_err(|e| ProvisionError::io(p, e))
}
