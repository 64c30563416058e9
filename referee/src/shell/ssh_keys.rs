//! Each tenant's SSH key pair for provisioning, in the tower's data dir
//! (`DATA/provisioner/tenants/<tenant>/id_ed25519`, the dir 0700, the
//! secret 0600 as `ssh-keygen` makes it): made at the tenant's first use
//! — the first `vigie servers ssh-key` (the referee answers it) or the
//! first provisioning (the provisioner connects with it) — and never
//! sent anywhere: only the `.pub` is read back.
//!
//! One key per tenant, never the tower's for all, so a server that
//! accepts one tenant's key never accepts another tenant's provisioning.
//! A pair is made in a dir of its own and renamed into place whole, so
//! the referee and the provisioner making it at once agree on one pair.
//! The tower's own tenant takes over the key a tower made before keys
//! were per tenant (`DATA/provisioner/id_ed25519`), which its suppliers
//! were given.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::core::operators::TOWER_TENANT;
use crate::error::RefereeError;

/// A tenant's key pair, made.
#[derive(Debug, Clone)]
pub struct TenantKey {
    /// The secret key file, for `ssh -i`.
    pub secret: PathBuf,
    /// `ssh-ed25519 AAAA… vigie-<tenant>`.
    pub public: String,
}

const SECRET: &str = "id_ed25519";
const PUBLIC: &str = "id_ed25519.pub";

fn fail(tenant: &str, reason: impl std::fmt::Display) -> RefereeError {
    RefereeError::SshKey {
        tenant: tenant.to_owned(),
        reason: reason.to_string(),
    }
}

/// The dir of `tenant`'s pair under `keys_dir` (`DATA/provisioner`).
/// Tenant names follow the host id rules (no `/`, no leading `.`), checked
/// again here since they become a path.
pub fn tenant_dir(keys_dir: &Path, tenant: &str) -> Result<PathBuf, RefereeError> {
    vigie_changes::validate_host_id(tenant).map_err(|e| fail(tenant, e))?;
    Ok(keys_dir.join("tenants").join(tenant))
}

fn read_public(dir: &Path) -> Option<String> {
    if !dir.join(SECRET).is_file() {
        return None;
    }
    let text = std::fs::read_to_string(dir.join(PUBLIC)).ok()?;
    let line = text.trim();
    line.starts_with("ssh-").then(|| line.to_owned())
}

/// `tenant`'s pair, made first if it is not there.
pub fn ensure(keys_dir: &Path, tenant: &str) -> Result<TenantKey, RefereeError> {
    let dir = tenant_dir(keys_dir, tenant)?;
    let made = |dir: &Path| {
        read_public(dir).map(|public| TenantKey {
            secret: dir.join(SECRET),
            public,
        })
    };
    if let Some(k) = made(&dir) {
        return Ok(k);
    }
    let parent = keys_dir.join("tenants");
    std::fs::create_dir_all(&parent).map_err(|e| fail(tenant, e))?;
    let nonce: u64 = rand::random();
    let tmp = parent.join(format!(".new-{tenant}-{}-{nonce:016x}", std::process::id()));
    let result = make_in(keys_dir, tenant, &tmp).and_then(|()| {
        match std::fs::rename(&tmp, &dir) {
            Ok(()) => {
                tracing::info!(event = "ssh_key_made", tenant);
                Ok(())
            }
            // Made meanwhile by the other daemon: that pair is the one.
            Err(_) if made(&dir).is_some() => Ok(()),
            Err(e) => Err(fail(tenant, format!("{}: {e}", dir.display()))),
        }
    });
    let _ = std::fs::remove_dir_all(&tmp);
    result?;
    made(&dir).ok_or_else(|| fail(tenant, format!("{} holds no key pair", dir.display())))
}

/// Makes the pair in `tmp` (0700): the tower tenant's earlier key when
/// there is one, else a new one by `ssh-keygen`.
fn make_in(keys_dir: &Path, tenant: &str, tmp: &Path) -> Result<(), RefereeError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(tmp)
        .map_err(|e| fail(tenant, format!("{}: {e}", tmp.display())))?;
    if tenant == TOWER_TENANT && read_public(keys_dir).is_some() {
        for f in [SECRET, PUBLIC] {
            std::fs::copy(keys_dir.join(f), tmp.join(f)).map_err(|e| fail(tenant, e))?;
        }
        return Ok(());
    }
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C"])
        .arg(format!("vigie-{tenant}"))
        .arg("-f")
        .arg(tmp.join(SECRET))
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| fail(tenant, format!("running ssh-keygen (openssh-client): {e}")))?;
    if !out.status.success() {
        return Err(fail(
            tenant,
            format!(
                "ssh-keygen failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn each_tenant_gets_its_own_private_pair_made_once() {
        let tmp = tempfile::tempdir().unwrap();
        let a = ensure(tmp.path(), "acme").unwrap();
        let b = ensure(tmp.path(), "bravo").unwrap();
        assert!(a.public.starts_with("ssh-ed25519 "), "{}", a.public);
        assert_ne!(a.public, b.public, "one key per tenant");
        assert_eq!(mode(&a.secret), 0o600);
        assert_eq!(mode(a.secret.parent().unwrap()), 0o700);
        let again = ensure(tmp.path(), "acme").unwrap();
        assert_eq!(again.public, a.public, "made once");
        assert!(ensure(tmp.path(), "../x").is_err());
        assert!(ensure(tmp.path(), ".hidden").is_err());
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("tenants"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 2, "no temporary dir left: {left:?}");
    }

    #[test]
    fn the_tower_tenant_keeps_the_key_its_suppliers_were_given() {
        let tmp = tempfile::tempdir().unwrap();
        let old = ensure(&tmp.path().join("x"), "other").unwrap();
        for f in [SECRET, PUBLIC] {
            std::fs::copy(old.secret.with_file_name(f), tmp.path().join(f)).unwrap();
        }
        let tower = ensure(tmp.path(), TOWER_TENANT).unwrap();
        assert_eq!(tower.public, old.public);
        assert_eq!(mode(&tower.secret), 0o600);
    }
}
