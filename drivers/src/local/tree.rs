//! Moving entries (a file, a symlink, a directory tree) between the host
//! root and a stash, with a copy-then-delete fallback across filesystems.
//! Every entry is named in a directory handle (see `handle`): a tree is
//! walked without following any symlink in it.

use std::ffi::OsStr;
use std::io;
use std::os::unix::fs::PermissionsExt;

use super::handle::{entry_of_file, DirFd, Kind};
use super::paths::gone;
use super::stash::{sync_dir, temp_name};
use crate::DriverError;

/// What kind of entry is at `name`, if any (a dangling symlink counts).
pub(crate) fn kind(dir: &DirFd, name: &OsStr) -> Result<Option<Kind>, DriverError> {
    dir.entry(name)
        .map(|e| e.map(|e| e.kind))
        .map_err(|e| DriverError::io(dir.show(name), e))
}

/// Moves `from_name` to `to_name` in `to` (which must not exist). A rename
/// when both are on one filesystem; otherwise a full copy to a temporary
/// sibling of the destination, renamed into place, and only then the
/// deletion of the source — so at every instant one complete copy exists.
pub(crate) fn move_entry(
    from: &DirFd,
    from_name: &OsStr,
    to: &DirFd,
    to_name: &OsStr,
) -> Result<(), DriverError> {
    match from.rename(from_name, to, to_name) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            tracing::debug!(
                event = "move_copying",
                from = %from.show(from_name).display(),
                to = %to.show(to_name).display()
            );
            copy_then_delete(from, from_name, to, to_name)?;
        }
        Err(e) => return Err(DriverError::io(from.show(from_name), e)),
    }
    sync_dir(from)?;
    sync_dir(to)
}

pub(crate) fn copy_then_delete(
    from: &DirFd,
    from_name: &OsStr,
    to: &DirFd,
    to_name: &OsStr,
) -> Result<(), DriverError> {
    let partial = temp_name(to_name);
    remove_tree(to, &partial)?;
    copy_tree(from, from_name, to, &partial)?;
    to.rename(&partial, to, to_name)
        .map_err(|e| DriverError::io(to.show(to_name), e))?;
    sync_dir(to)?;
    remove_tree(from, from_name)
}

/// Removes a file, symlink or directory tree; nothing there is fine.
/// Symlinks inside the tree are removed, never followed.
pub(crate) fn remove_tree(dir: &DirFd, name: &OsStr) -> Result<(), DriverError> {
    let at = |e: io::Error| DriverError::io(dir.show(name), e);
    let result = match kind(dir, name)? {
        None => return Ok(()),
        Some(Kind::Dir) => {
            let inner = dir.dir(name).map_err(at)?;
            for entry in inner.names().map_err(at)? {
                remove_tree(&inner, &entry)?;
            }
            dir.rmdir(name)
        }
        Some(_) => dir.unlink(name),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if gone(&e) => Ok(()),
        Err(e) => Err(at(e)),
    }
}

/// Copies a tree with its permission bits and symlinks (as symlinks),
/// every file fsynced. Refuses devices, fifos and sockets.
pub(crate) fn copy_tree(
    from: &DirFd,
    from_name: &OsStr,
    to: &DirFd,
    to_name: &OsStr,
) -> Result<(), DriverError> {
    let src = |e: io::Error| DriverError::io(from.show(from_name), e);
    let dst = |e: io::Error| DriverError::io(to.show(to_name), e);
    let entry = from
        .entry(from_name)
        .map_err(src)?
        .ok_or_else(|| src(io::ErrorKind::NotFound.into()))?;
    match entry.kind {
        Kind::Symlink => {
            let target = from.read_link(from_name).map_err(src)?;
            to.symlink(&target, to_name).map_err(dst)
        }
        Kind::Dir => {
            to.mkdir(to_name, 0o700).map_err(dst)?;
            let (inner_from, inner_to) = (
                from.dir(from_name).map_err(src)?,
                to.dir(to_name).map_err(dst)?,
            );
            for name in inner_from.names().map_err(src)? {
                copy_tree(&inner_from, &name, &inner_to, &name)?;
            }
            // Last, so that a read-only directory could still be filled.
            inner_to.chmod(entry.mode).map_err(dst)?;
            sync_dir(&inner_to)
        }
        Kind::File => copy_file(from, from_name, to, to_name, entry.mode),
        Kind::Other => Err(src(io::Error::other(
            "not a file, directory or symlink; cannot copy it",
        ))),
    }
}

/// Copies a file's bytes into a new file (never through an existing
/// entry) with `mode`, fsynced.
fn copy_file(
    from: &DirFd,
    from_name: &OsStr,
    to: &DirFd,
    to_name: &OsStr,
    mode: u32,
) -> Result<(), DriverError> {
    let src = |e: io::Error| DriverError::io(from.show(from_name), e);
    let dst = |e: io::Error| DriverError::io(to.show(to_name), e);
    let mut source = from.open_file(from_name).map_err(src)?;
    if entry_of_file(&source).map_err(src)?.kind != Kind::File {
        return Err(src(io::Error::other("changed while being copied")));
    }
    let mut copy = to.create_file(to_name).map_err(dst)?;
    io::copy(&mut source, &mut copy).map_err(dst)?;
    copy.set_permissions(std::fs::Permissions::from_mode(mode))
        .and_then(|()| copy.sync_all())
        .map_err(dst)
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::conformance::snapshot_tree;

    /// The cross-filesystem path cannot be forced with a rename between
    /// two temp dirs, so it is exercised directly.
    #[test]
    fn copy_then_delete_moves_a_tree_faithfully() {
        let base = tempfile::tempdir().unwrap();
        let from = base.path().join("from");
        fs::create_dir_all(from.join("a/b")).unwrap();
        fs::write(from.join("a/b/f"), b"hello").unwrap();
        fs::set_permissions(from.join("a/b/f"), fs::Permissions::from_mode(0o4711)).unwrap();
        fs::set_permissions(from.join("a"), fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink("/nowhere", from.join("link")).unwrap();
        let before = snapshot_tree(&from);

        let to = base.path().join("to");
        let dir = DirFd::open(base.path()).unwrap();
        let (from_name, to_name) = (OsStr::new("from"), OsStr::new("to"));
        copy_then_delete(&dir, from_name, &dir, to_name).unwrap();
        assert_eq!(kind(&dir, from_name).unwrap(), None);
        assert_eq!(kind(&dir, OsStr::new(".to.vigie-tmp")).unwrap(), None);
        assert_eq!(snapshot_tree(&to), before);
    }

    #[test]
    fn copy_refuses_special_files() {
        let base = tempfile::tempdir().unwrap();
        let fifo = base.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let dir = DirFd::open(base.path()).unwrap();
        let err = copy_tree(&dir, OsStr::new("fifo"), &dir, OsStr::new("copy")).unwrap_err();
        assert!(err.to_string().contains("fifo"), "{err}");
    }
}
