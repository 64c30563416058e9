//! The agent's binary as servers get it: the running binary stripped
//! once, when the provisioner starts (`strip --strip-all` from binutils,
//! which every machine that builds Rust has — `cc` links with it; the
//! Debian package's binary lost its debug info when packaged), into
//! `DATA/provisioner/agent/vigie`, with its SHA-256. Each server's
//! install then compares that digest with the one of the binary it has
//! and is sent a copy only when they differ. Without `strip` the binary
//! goes as it is (`agent_binary_unstripped` says why).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::error::ProvisionError;

/// The binary sent to servers, and what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentBinary {
    pub path: PathBuf,
    /// SHA-256 of the file, lowercase hex (as `sha256sum` prints it).
    pub sha256: String,
    pub bytes: u64,
}

impl AgentBinary {
    /// `path` as it is, digested.
    pub fn of(path: &Path) -> Result<Self, ProvisionError> {
        let (sha256, bytes) = digest(path)?;
        Ok(Self {
            path: path.to_owned(),
            sha256,
            bytes,
        })
    }
}

/// SHA-256 (hex) and size of a file, read in chunks.
pub fn digest(path: &Path) -> Result<(String, u64), ProvisionError> {
    let mut f = std::fs::File::open(path).map_err(|e| ProvisionError::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf).map_err(|e| ProvisionError::io(path, e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((format!("{:x}", h.finalize()), bytes))
}

/// Strips `exe` into `dir/vigie` (made whole under another name, then
/// renamed), or copies it there when `strip` cannot run.
pub fn prepare(exe: &Path, dir: &Path) -> Result<AgentBinary, ProvisionError> {
    let started = Instant::now();
    std::fs::create_dir_all(dir).map_err(|e| ProvisionError::io(dir, e))?;
    let tmp = dir.join("vigie.new");
    let _ = std::fs::remove_file(&tmp);
    let stripped = match Command::new("strip")
        .arg("--strip-all")
        .arg("-o")
        .arg(&tmp)
        .arg(exe)
        .output()
    {
        Ok(o) if o.status.success() => true,
        Ok(o) => {
            let why = String::from_utf8_lossy(&o.stderr);
            warn!(event = "agent_binary_unstripped", reason = %why.trim());
            false
        }
        Err(e) => {
            warn!(event = "agent_binary_unstripped", reason = %format!("strip: {e} (binutils installs it)"));
            false
        }
    };
    if !stripped {
        std::fs::copy(exe, &tmp).map_err(|e| ProvisionError::io(&tmp, e))?;
    }
    let path = dir.join("vigie");
    std::fs::rename(&tmp, &path).map_err(|e| ProvisionError::io(&path, e))?;
    let bin = AgentBinary::of(&path)?;
    info!(
        event = "agent_binary_ready",
        bytes = bin.bytes,
        sha256 = %bin.sha256,
        stripped,
        took_ms = started.elapsed().as_millis() as u64
    );
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_binary_is_stripped_once_and_its_digest_is_sha256sums() {
        let exe = std::env::current_exe().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let bin = prepare(&exe, dir.path()).unwrap();
        let whole = std::fs::metadata(&exe).unwrap().len();
        assert!(bin.bytes <= whole, "{} > {whole}", bin.bytes);
        assert_eq!(bin.path, dir.path().join("vigie"));
        let out = Command::new("sha256sum").arg(&bin.path).output().unwrap();
        let printed = String::from_utf8_lossy(&out.stdout);
        assert_eq!(printed.split_whitespace().next(), Some(bin.sha256.as_str()));
        assert!(!dir.path().join("vigie.new").exists());
    }
}
