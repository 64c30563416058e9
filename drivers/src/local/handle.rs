//! Directory handles, so that the kernel enforces confinement. A host path
//! is reached from the root's handle one component at a time, each opened
//! with `openat(O_DIRECTORY | O_NOFOLLOW)`, and every operation (create,
//! open, rename, unlink, chmod, stat) names one entry of the handle it
//! acts in. A symlink swapped in after any check is refused by the kernel
//! (`ELOOP`), never followed: what is done through a handle stays where
//! the handle is.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};

/// What is at a name, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub kind: Kind,
    /// The 12 permission bits.
    pub mode: u32,
}

/// An open directory. `label` is its path for messages only: nothing is
/// ever looked up through it.
#[derive(Debug)]
pub(crate) struct DirFd {
    fd: OwnedFd,
    label: PathBuf,
}

const DIR_FLAGS: OFlags = OFlags::DIRECTORY
    .union(OFlags::RDONLY)
    .union(OFlags::CLOEXEC)
    .union(OFlags::NOFOLLOW);

impl DirFd {
    /// Opens a directory by its path (symlinks followed): the host root,
    /// canonicalised once, and the caller's stash directories.
    pub fn open(path: &Path) -> io::Result<DirFd> {
        let flags = DIR_FLAGS.difference(OFlags::NOFOLLOW);
        let fd = rustix::fs::openat(CWD, path, flags, Mode::empty())?;
        Ok(DirFd {
            fd,
            label: path.to_path_buf(),
        })
    }

    pub fn label(&self) -> &Path {
        &self.label
    }

    /// The path of `name` in this directory, for messages.
    pub fn show(&self, name: &OsStr) -> PathBuf {
        self.label.join(name)
    }

    pub fn try_clone(&self) -> io::Result<DirFd> {
        Ok(DirFd {
            fd: self.fd.try_clone()?,
            label: self.label.clone(),
        })
    }

    /// The subdirectory `name`; `ELOOP` if it is a symlink, `ENOTDIR` if
    /// it is anything else but a directory.
    pub fn dir(&self, name: &OsStr) -> io::Result<DirFd> {
        let fd = match rustix::fs::openat(&self.fd, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            // Linux says ENOTDIR for a symlink opened with O_DIRECTORY and
            // O_NOFOLLOW. A look at the name tells a symlink from a file;
            // a directory there now means the name is being swapped.
            Err(rustix::io::Errno::NOTDIR)
                if self
                    .entry(name)?
                    .is_some_and(|e| matches!(e.kind, Kind::Symlink | Kind::Dir)) =>
            {
                return Err(rustix::io::Errno::LOOP.into())
            }
            Err(e) => return Err(e.into()),
        };
        Ok(DirFd {
            fd,
            label: self.show(name),
        })
    }

    /// What is at `name`; `None` when nothing is.
    pub fn entry(&self, name: &OsStr) -> io::Result<Option<Entry>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => Ok(Some(entry_of(stat.st_mode))),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Opens `name` for reading. Never through a symlink, and without
    /// blocking on a fifo; the caller checks the kind on the open file.
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Opens the existing `name` for writing (not truncated, not created),
    /// never through a symlink nor blocking on a fifo.
    pub fn open_file_write(&self, name: &OsStr) -> io::Result<File> {
        let flags = OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW | OFlags::NONBLOCK;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())?;
        Ok(File::from(fd))
    }

    /// Creates `name`, which must not exist (not even as a symlink), 0600.
    pub fn create_file(&self, name: &OsStr) -> io::Result<File> {
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::from_raw_mode(0o600))?;
        Ok(File::from(fd))
    }

    pub fn mkdir(&self, name: &OsStr, mode: u32) -> io::Result<()> {
        Ok(rustix::fs::mkdirat(
            &self.fd,
            name,
            Mode::from_raw_mode(mode),
        )?)
    }

    /// Renames `from` here to `to` in `dir` (which may be this one).
    pub fn rename(&self, from: &OsStr, dir: &DirFd, to: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::renameat(&self.fd, from, &dir.fd, to)?)
    }

    /// Removes a non-directory entry (a symlink itself, never its target).
    pub fn unlink(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?)
    }

    /// Removes an empty subdirectory.
    pub fn rmdir(&self, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)?)
    }

    pub fn read_link(&self, name: &OsStr) -> io::Result<OsString> {
        let target = rustix::fs::readlinkat(&self.fd, name, Vec::new())?;
        Ok(OsStr::from_bytes(target.as_bytes()).to_os_string())
    }

    pub fn symlink(&self, target: &OsStr, name: &OsStr) -> io::Result<()> {
        Ok(rustix::fs::symlinkat(target, &self.fd, name)?)
    }

    /// The names in this directory, without `.` and `..`.
    pub fn names(&self) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::read_from(&self.fd)? {
            let name = entry?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(&name).to_os_string());
            }
        }
        Ok(names)
    }

    /// Sets this directory's permission bits.
    pub fn chmod(&self, mode: u32) -> io::Result<()> {
        Ok(rustix::fs::fchmod(
            &self.fd,
            Mode::from_raw_mode(mode & 0o7777),
        )?)
    }

    /// Makes this directory's entries (creations, renames, removals) durable.
    pub fn sync(&self) -> io::Result<()> {
        Ok(rustix::fs::fsync(&self.fd)?)
    }

    /// A path naming this very directory for as long as the handle is open
    /// (also in a child process before it execs): how a command is started
    /// in it without looking its path up again.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_fd().as_raw_fd()))
    }
}

fn entry_of(st_mode: u32) -> Entry {
    let kind = match FileType::from_raw_mode(st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    };
    Entry {
        kind,
        mode: st_mode & 0o7777,
    }
}

/// The kind and mode of an open file.
pub(crate) fn entry_of_file(file: &File) -> io::Result<Entry> {
    Ok(entry_of(rustix::fs::fstat(file)?.st_mode))
}

/// The error of a lookup through a symlink refused by `O_NOFOLLOW`.
pub(crate) fn is_symlink_refusal(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_never_opened_through() {
        let base = tempfile::tempdir().unwrap();
        std::fs::create_dir(base.path().join("outside")).unwrap();
        std::fs::write(base.path().join("outside/f"), b"x").unwrap();
        std::os::unix::fs::symlink(base.path().join("outside"), base.path().join("link")).unwrap();
        std::os::unix::fs::symlink(base.path().join("outside/f"), base.path().join("flink"))
            .unwrap();
        let dir = DirFd::open(base.path()).unwrap();
        let err = dir.dir(OsStr::new("link")).unwrap_err();
        assert!(is_symlink_refusal(&err), "{err}");
        let err = dir.open_file(OsStr::new("flink")).unwrap_err();
        assert!(is_symlink_refusal(&err), "{err}");
        assert!(dir.create_file(OsStr::new("flink")).is_err());
        let link = dir.entry(OsStr::new("link")).unwrap().unwrap();
        assert_eq!(link.kind, Kind::Symlink);
        assert_eq!(
            dir.entry(OsStr::new("nothing")).unwrap().map(|e| e.kind),
            None
        );
        assert_eq!(std::fs::read(base.path().join("outside/f")).unwrap(), b"x");
    }
}
