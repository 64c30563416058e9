//! Confinement: every host path a local step names is reached inside the
//! host root. `..` is refused outright (rather than resolved); the path's
//! directories are then opened one by one from the root's handle without
//! following symlinks (see `handle`), so no symlink — planted by an
//! earlier step, by anyone else, or swapped in mid-step — can lead
//! outside: the kernel refuses it, and the refusal names the component.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path, PathBuf};

use super::handle::{is_symlink_refusal, DirFd};
use crate::DriverError;

/// A host path, parsed: its names under the root.
#[derive(Debug, Clone)]
pub(crate) struct HostPath {
    /// As the step gave it.
    raw: String,
    /// As an operator reads it: `/etc/app.conf`.
    pub display: String,
    /// The root joined with the normalised path: for messages and a
    /// command's `$PWD`, never looked up.
    pub full: PathBuf,
    names: Vec<OsString>,
}

impl HostPath {
    /// The target's own name; `None` for the root itself.
    pub fn name(&self) -> Option<&OsStr> {
        self.names.last().map(OsString::as_os_str)
    }

    /// The names of the directories leading to the target.
    pub fn parent_names(&self) -> &[OsString] {
        &self.names[..self.names.len().saturating_sub(1)]
    }

    /// The host path of the first `n` names, for messages.
    fn prefix(&self, n: usize) -> String {
        let mut shown = String::new();
        for name in &self.names[..n.min(self.names.len())] {
            shown.push('/');
            shown.push_str(&name.to_string_lossy());
        }
        shown
    }

    fn symlink(&self, depth: usize) -> DriverError {
        DriverError::Symlink {
            path: self.raw.clone(),
            component: self.prefix(depth),
        }
    }

    /// A failed lookup or operation on the `depth`-th name.
    pub fn error(&self, depth: usize, e: io::Error) -> DriverError {
        if is_symlink_refusal(&e) {
            return self.symlink(depth);
        }
        let mut full = self.full.clone();
        for _ in depth..self.names.len() {
            full.pop();
        }
        DriverError::io(full, e)
    }

    /// The target is a symlink: refused (it is not followed either).
    pub fn target_is_symlink(&self) -> DriverError {
        self.symlink(self.names.len())
    }
}

/// Parses `raw` (absolute or relative: both mean under `root`); the root
/// itself is allowed (a command's working directory).
pub(crate) fn confine(root: &Path, raw: &str) -> Result<HostPath, DriverError> {
    let mut names = Vec::new();
    for component in Path::new(raw).components() {
        match component {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(DriverError::PathEscapes {
                    path: raw.to_string(),
                })
            }
            Component::Normal(name) => names.push(name.to_os_string()),
        }
    }
    let mut path = HostPath {
        raw: raw.to_string(),
        display: String::new(),
        full: root.to_path_buf(),
        names,
    };
    path.display = path.prefix(path.names.len());
    if path.display.is_empty() {
        path.display.push('/');
    }
    path.full.extend(&path.names);
    Ok(path)
}

/// Like [`confine`], for a step's target: the root itself is refused.
pub(crate) fn confine_target(root: &Path, raw: &str) -> Result<HostPath, DriverError> {
    let path = confine(root, raw)?;
    if path.names.is_empty() {
        return Err(DriverError::IsRoot {
            path: raw.to_string(),
        });
    }
    Ok(path)
}

/// The directories leading to a target, opened from the root as far as
/// they exist: `dirs[0]` is the root, `dirs[i]` the directory of the first
/// `i` names.
#[derive(Debug)]
pub(crate) struct Chain {
    pub dirs: Vec<DirFd>,
    /// How many of the target's parent directories do not exist (always
    /// the deepest ones: a missing directory has no children).
    pub missing: usize,
}

impl Chain {
    /// The target's own directory, if it exists.
    pub fn parent(&self, path: &HostPath) -> Option<&DirFd> {
        (self.missing == 0 && self.dirs.len() == path.parent_names().len() + 1)
            .then(|| self.dirs.last())
            .flatten()
    }
}

/// The part of a name that is not a directory. Below it nothing exists,
/// so nothing is missing either: a write there fails when it tries.
fn not_there(e: &io::Error) -> Option<bool> {
    match e.kind() {
        io::ErrorKind::NotFound => Some(true),
        _ if e.raw_os_error() == Some(nix::libc::ENOTDIR) => Some(false),
        _ => None,
    }
}

/// Opens the target's parent directories from `root`, none created.
pub(crate) fn open_chain(root: &DirFd, path: &HostPath) -> Result<Chain, DriverError> {
    let parents = path.parent_names();
    let mut dirs = vec![root.try_clone().map_err(|e| path.error(0, e))?];
    for (i, name) in parents.iter().enumerate() {
        let Some(here) = dirs.last() else { break };
        match here.dir(name) {
            Ok(dir) => dirs.push(dir),
            Err(e) => match not_there(&e) {
                Some(absent) => {
                    let missing = if absent { parents.len() - i } else { 0 };
                    return Ok(Chain { dirs, missing });
                }
                None => return Err(path.error(i + 1, e)),
            },
        }
    }
    Ok(Chain { dirs, missing: 0 })
}

/// The target's parent directory, `None` if it does not exist.
pub(crate) fn open_parent(root: &DirFd, path: &HostPath) -> Result<Option<DirFd>, DriverError> {
    let mut chain = open_chain(root, path)?;
    if chain.parent(path).is_none() {
        return Ok(None);
    }
    Ok(chain.dirs.pop())
}

/// The target's parent directory, creating the missing ones (mode 0777
/// less the umask, as `mkdir -p`). A directory swapped for a symlink at
/// any moment is refused, never followed.
pub(crate) fn make_parent(root: &DirFd, path: &HostPath) -> Result<DirFd, DriverError> {
    let mut here = root.try_clone().map_err(|e| path.error(0, e))?;
    for (i, name) in path.parent_names().iter().enumerate() {
        match here.mkdir(name, 0o777) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(path.error(i + 1, e)),
        }
        here = here.dir(name).map_err(|e| path.error(i + 1, e))?;
    }
    Ok(here)
}

/// The directory a path names, itself included (a command's working
/// directory); `None` if it is not there or not a directory.
pub(crate) fn open_dir(root: &DirFd, path: &HostPath) -> Result<Option<DirFd>, DriverError> {
    let mut here = root.try_clone().map_err(|e| path.error(0, e))?;
    for (i, name) in path.names.iter().enumerate() {
        here = match here.dir(name) {
            Ok(dir) => dir,
            Err(e) if not_there(&e).is_some() => return Ok(None),
            Err(e) => return Err(path.error(i + 1, e)),
        };
    }
    Ok(Some(here))
}

/// The path is not there: absent, or under something that is not a directory.
pub(crate) fn gone(e: &io::Error) -> bool {
    not_there(e).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_of(dir: &tempfile::TempDir) -> DirFd {
        DirFd::open(dir.path()).unwrap()
    }

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
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("link")).unwrap();
        let handle = root_of(&root);
        for raw in ["/link/x", "link/x/y"] {
            let path = confine(root.path(), raw).unwrap();
            for err in [
                open_chain(&handle, &path).unwrap_err(),
                make_parent(&handle, &path).unwrap_err(),
                open_dir(&handle, &path).unwrap_err(),
            ] {
                assert!(err.to_string().contains("symlinks are not followed"));
                assert!(err.to_string().contains("/link is"), "{err}");
            }
        }
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
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
        let handle = root_of(&root);
        let p = confine(root.path(), "/a/b/c/f").unwrap();
        let chain = open_chain(&handle, &p).unwrap();
        assert_eq!((chain.dirs.len(), chain.missing), (2, 2));
        assert!(chain.parent(&p).is_none());
        let made = make_parent(&handle, &p).unwrap();
        assert_eq!(made.label(), root.path().join("a/b/c"));
        assert!(root.path().join("a/b/c").is_dir());
        let chain = open_chain(&handle, &p).unwrap();
        assert_eq!((chain.dirs.len(), chain.missing), (4, 0));
        let top = confine(root.path(), "/f").unwrap();
        let chain = open_chain(&handle, &top).unwrap();
        assert_eq!((chain.dirs.len(), chain.missing), (1, 0));
        assert!(chain.parent(&top).is_some());
    }
}
