//! Moving entries (a file, a symlink, a directory tree) between the host
//! root and a stash, with a copy-then-delete fallback across filesystems.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::paths::gone;
use super::stash::{sync_dir, temp_name};
use crate::DriverError;

/// Whether anything (even a dangling symlink) is at `path`.
pub(crate) fn exists(path: &Path) -> Result<bool, DriverError> {
    match path.symlink_metadata() {
        Ok(_) => Ok(true),
        Err(e) if gone(&e) => Ok(false),
        Err(e) => Err(DriverError::io(path, e)),
    }
}

/// Moves `from` to `to` (which must not exist). A rename when both are on
/// one filesystem; otherwise a full copy to a temporary sibling of `to`,
/// renamed into place, and only then the deletion of `from` — so at every
/// instant one complete copy exists, under `from` or under `to`.
pub(crate) fn move_entry(from: &Path, to: &Path) -> Result<(), DriverError> {
    match fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
            tracing::debug!(event = "move_copying", from = %from.display(), to = %to.display());
            copy_then_delete(from, to)?;
        }
        Err(e) => return Err(DriverError::io(from, e)),
    }
    if let Some(dir) = from.parent() {
        sync_dir(dir)?;
    }
    if let Some(dir) = to.parent() {
        sync_dir(dir)?;
    }
    Ok(())
}

pub(crate) fn copy_then_delete(from: &Path, to: &Path) -> Result<(), DriverError> {
    let (Some(dir), Some(name)) = (to.parent(), to.file_name()) else {
        return Err(DriverError::io(to, io::Error::other("no parent directory")));
    };
    let partial = dir.join(temp_name(name));
    remove_tree(&partial)?;
    copy_tree(from, &partial)?;
    fs::rename(&partial, to).map_err(|e| DriverError::io(to, e))?;
    sync_dir(dir)?;
    remove_tree(from)
}

/// Removes a file, symlink or directory tree; nothing there is fine.
/// Symlinks inside the tree are removed, never followed.
pub(crate) fn remove_tree(path: &Path) -> Result<(), DriverError> {
    let result = match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => Ok(()),
        Err(e) if gone(&e) => Ok(()),
        Err(e) => Err(DriverError::io(path, e)),
    }
}

/// Copies a tree with its permission bits and symlinks (as symlinks),
/// every file fsynced. Refuses devices, fifos and sockets.
pub(crate) fn copy_tree(from: &Path, to: &Path) -> Result<(), DriverError> {
    let meta = from
        .symlink_metadata()
        .map_err(|e| DriverError::io(from, e))?;
    let kind = meta.file_type();
    let mode = meta.permissions().mode() & 0o7777;
    if kind.is_symlink() {
        let target = fs::read_link(from).map_err(|e| DriverError::io(from, e))?;
        std::os::unix::fs::symlink(target, to).map_err(|e| DriverError::io(to, e))
    } else if kind.is_dir() {
        fs::create_dir(to).map_err(|e| DriverError::io(to, e))?;
        let entries = fs::read_dir(from).map_err(|e| DriverError::io(from, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| DriverError::io(from, e))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        // Last, so that a read-only directory could still be filled.
        fs::set_permissions(to, fs::Permissions::from_mode(mode))
            .map_err(|e| DriverError::io(to, e))?;
        sync_dir(to)
    } else if kind.is_file() {
        copy_file(from, to, mode)
    } else {
        Err(DriverError::io(
            from,
            io::Error::other("not a file, directory or symlink; cannot copy it"),
        ))
    }
}

/// Copies a file's bytes into a new file (`create_new`: never through an
/// existing entry) with `mode`, fsynced.
pub(crate) fn copy_file(from: &Path, to: &Path, mode: u32) -> Result<(), DriverError> {
    let mut src = File::open(from).map_err(|e| DriverError::io(from, e))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| DriverError::io(to, e))?;
    io::copy(&mut src, &mut dst).map_err(|e| DriverError::io(to, e))?;
    dst.set_permissions(fs::Permissions::from_mode(mode))
        .and_then(|()| dst.sync_all())
        .map_err(|e| DriverError::io(to, e))
}

#[cfg(test)]
mod tests {
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
        copy_then_delete(&from, &to).unwrap();
        assert!(!exists(&from).unwrap());
        assert!(!exists(&base.path().join(".to.vigie-tmp")).unwrap());
        assert_eq!(snapshot_tree(&to), before);
    }

    #[test]
    fn copy_refuses_special_files() {
        let base = tempfile::tempdir().unwrap();
        let fifo = base.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644)).unwrap();
        let err = copy_tree(&fifo, &base.path().join("copy")).unwrap_err();
        assert!(err.to_string().contains("fifo"), "{err}");
    }
}
