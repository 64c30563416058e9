//! A small filesystem of its own for a test that fills a disk: a real
//! tmpfs, mounted for the test (root only) and lazily unmounted on drop.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted on drop.
#[derive(Debug)]
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`2m`, `256k`) on `dir` (made if missing),
    /// mode 0700. `None`, said on stderr, where mounting is not permitted.
    pub fn mount(dir: &Path, size: &str) -> anyhow::Result<Option<Self>> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0700")])
            .arg("tmpfs")
            .arg(dir)
            .output()?;
        if !out.status.success() {
            eprintln!(
                "SKIPPED: cannot mount a tmpfs on {} ({}): this test needs root",
                dir.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return Ok(None);
        }
        Ok(Some(Self(dir.to_path_buf())))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes `path` until the filesystem is full.
pub fn fill(path: &Path) -> anyhow::Result<u64> {
    use std::io::Write;
    let mut f = std::fs::File::create(path)?;
    let chunk = vec![0u8; 4096];
    let mut written = 0u64;
    loop {
        match f.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => return Err(e.into()),
        }
    }
    f.sync_all().ok();
    Ok(written)
}
