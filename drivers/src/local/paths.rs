//! Confinement: every host path a local step names resolves inside the
//! host root. `..` is refused outright (rather than resolved) and every
//! existing component is checked with `symlink_metadata`, so no symlink —
//! planted by an earlier step or by anyone else — can lead outside.
//! Checked again before each operation (prepare, apply, undo).

use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::DriverError;

/// A host path resolved under the root.
#[derive(Debug, Clone)]
pub(crate) struct HostPath {
    /// As an operator reads it: `/etc/app.conf`.
    pub display: String,
    /// The root joined with the normalised path.
    pub full: PathBuf,
    depth: usize,
}

impl HostPath {
    /// The directory holding the target, and the target's name. `None` for
    /// the root itself.
    pub fn split(&self) -> Option<(&Path, OsString)> {
        if self.depth == 0 {
            return None;
        }
        Some((self.full.parent()?, self.full.file_name()?.to_os_string()))
    }

    /// The `n` nearest ancestors, nearest first (never the root).
    pub fn ancestors(&self, n: usize) -> impl Iterator<Item = &Path> {
        self.full
            .ancestors()
            .skip(1)
            .take(n.min(self.depth.saturating_sub(1)))
    }
}

/// Resolves `raw` (absolute or relative: both mean under `root`); the root
/// itself is allowed (a command's working directory).
pub(crate) fn confine(root: &Path, raw: &str) -> Result<HostPath, DriverError> {
    let mut full = root.to_path_buf();
    let mut display = String::new();
    let mut depth = 0;
    for component in Path::new(raw).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(DriverError::PathEscapes {
                    path: raw.to_string(),
                })
            }
            Component::Normal(name) => {
                full.push(name);
                display.push('/');
                display.push_str(&name.to_string_lossy());
                depth += 1;
                match full.symlink_metadata() {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        return Err(DriverError::Symlink {
                            path: raw.to_string(),
                            component: display,
                        })
                    }
                    Ok(_) => {}
                    // Nothing below a missing (or non-directory) component
                    // exists, so nothing below can be a symlink either.
                    Err(e) if gone(&e) => {}
                    Err(e) => return Err(DriverError::io(&full, e)),
                }
            }
        }
    }
    if display.is_empty() {
        display.push('/');
    }
    Ok(HostPath {
        display,
        full,
        depth,
    })
}

/// Like [`confine`], for a step's target: the root itself is refused.
pub(crate) fn confine_target(root: &Path, raw: &str) -> Result<HostPath, DriverError> {
    let path = confine(root, raw)?;
    if path.depth == 0 {
        return Err(DriverError::IsRoot {
            path: raw.to_string(),
        });
    }
    Ok(path)
}

/// How many of the target's parent directories do not exist yet (they are
/// always the nearest ones: a missing directory has no existing children).
pub(crate) fn missing_parents(path: &HostPath) -> Result<usize, DriverError> {
    let mut missing = 0;
    for dir in path.ancestors(usize::MAX) {
        match dir.symlink_metadata() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing += 1,
            Err(e) => return Err(DriverError::io(dir, e)),
        }
    }
    Ok(missing)
}

/// The path is not there: absent, or under something that is not a directory.
pub(crate) fn gone(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(nix::libc::ENOTDIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_and_relative_mean_the_same() {
        let root = tempfile::tempdir().unwrap();
        let a = confine(root.path(), "/etc/app.conf").unwrap();
        let b = confine(root.path(), "etc/./app.conf").unwrap();
        assert_eq!(a.full, root.path().join("etc/app.conf"));
        assert_eq!(a.full, b.full);
        assert_eq!(a.display, "/etc/app.conf");
        assert_eq!(b.display, "/etc/app.conf");
    }

    #[test]
    fn parent_components_are_refused() {
        let root = tempfile::tempdir().unwrap();
        for raw in ["../outside", "/a/../../x", "a/.."] {
            let err = confine(root.path(), raw).unwrap_err();
            assert!(matches!(err, DriverError::PathEscapes { .. }), "{raw}");
            assert!(err.to_string().contains(raw), "{err}");
        }
    }

    #[test]
    fn symlink_components_are_refused() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/tmp", root.path().join("link")).unwrap();
        for raw in ["/link", "/link/x", "link/x/y"] {
            let err = confine(root.path(), raw).unwrap_err();
            assert!(err.to_string().contains("symlinks are not followed"));
            assert!(err.to_string().contains("/link"), "{err}");
        }
    }

    #[test]
    fn the_root_is_not_a_target() {
        let root = tempfile::tempdir().unwrap();
        for raw in ["/", "", ".", "/./"] {
            assert!(confine(root.path(), raw).is_ok());
            let err = confine_target(root.path(), raw).unwrap_err();
            assert!(matches!(err, DriverError::IsRoot { .. }), "{raw}");
        }
    }

    #[test]
    fn counts_missing_parents() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("a")).unwrap();
        let p = confine(root.path(), "/a/b/c/f").unwrap();
        assert_eq!(missing_parents(&p).unwrap(), 2);
        let names: Vec<_> = p.ancestors(2).collect();
        assert_eq!(names, [root.path().join("a/b/c"), root.path().join("a/b")]);
        let top = confine(root.path(), "/f").unwrap();
        assert_eq!(missing_parents(&top).unwrap(), 0);
        assert_eq!(top.ancestors(5).count(), 0);
    }
}
