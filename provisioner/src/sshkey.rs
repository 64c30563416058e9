//! Where the provisioning keys are: `DATA/provisioner`, one pair per
//! tenant (made and read by `vigie_referee::ssh_keys`, which the referee
//! shares: it answers `vigie servers ssh-key`). The tower's own tenant's
//! pair is made at the provisioner's first start, so that `vigie servers
//! ssh-key --data-dir DATA` on the tower's machine prints it as it did
//! before keys were per tenant.

use std::path::{Path, PathBuf};

use crate::error::ProvisionError;

/// `DATA/provisioner`: the key pairs and the per-server known_hosts files.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("provisioner")
}

/// Makes the tower's own tenant's pair unless it exists; returns the
/// secret key's path.
pub fn ensure(data_dir: &Path) -> Result<PathBuf, ProvisionError> {
    vigie_referee::ssh_keys::ensure(&dir(data_dir), vigie_wire::ids::TOWER_TENANT)
        .map(|k| k.secret)
        .map_err(|e| ProvisionError::Config(e.to_string()))
}

/// The tower's own tenant's public key, read on the tower's machine
/// (`ssh-ed25519 AAAA… vigie-default`); an older tower's key where the
/// provisioner has not started since.
pub fn public(data_dir: &Path) -> Result<String, ProvisionError> {
    let tenant = vigie_referee::ssh_keys::tenant_dir(&dir(data_dir), vigie_wire::ids::TOWER_TENANT)
        .map_err(|e| ProvisionError::Config(e.to_string()))?;
    let p = tenant.join("id_ed25519.pub");
    let p = if p.exists() {
        p
    } else {
        dir(data_dir).join("id_ed25519.pub")
    };
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_owned())
        .map_err(|e| ProvisionError::io(p, e))
}
