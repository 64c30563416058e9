//! Read-only access to a host root for what watches a host besides its
//! steps (the plug's host metrics and service-log collector): the same
//! confinement as steps (see `handle`). Whatever runs in the root can
//! swap a directory or a file for a symlink to `/etc` at any moment; a
//! plug runs as root, so a log or pid file read by name could hand an
//! operator any file of the machine. Here every component is opened from
//! the root's handle without following symlinks, and a file is read only
//! if it is a regular file.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;

use super::handle::{entry_of_file, DirFd, Kind};

/// A regular file with one name: a hard link to a file elsewhere (made
/// where `fs.protected_hardlinks` is off, or by a root process in the
/// root) would reach past the root as surely as a symlink.
fn own_file(f: &File, name: &str) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let refuse = |why: &str| {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name} {why}"),
        ))
    };
    if entry_of_file(f)?.kind != Kind::File {
        return refuse("is not a regular file");
    }
    if f.metadata()?.nlink() != 1 {
        return refuse("has other hard links");
    }
    Ok(())
}

/// A directory reached from a host root without following a symlink.
#[derive(Debug)]
pub struct RootDir(DirFd);

impl RootDir {
    /// The host root itself (its own path may be a symlink: it is the
    /// operator's setting, not the host's).
    pub fn open(root: &Path) -> io::Result<Self> {
        DirFd::open(root).map(Self)
    }

    /// The directory `rel` (names separated by `/`) under this one; a
    /// symlink, `..` or a missing name anywhere is an error.
    pub fn dir(&self, rel: &str) -> io::Result<Self> {
        let mut here = self.0.try_clone()?;
        for name in rel.split('/').filter(|n| !n.is_empty() && *n != ".") {
            if name == ".." {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "'..' in a host path",
                ));
            }
            here = here.dir(OsStr::new(name))?;
        }
        Ok(Self(here))
    }

    /// The names of the directories in this one (not symlinks to one),
    /// sorted; names that are not UTF-8 are left out.
    pub fn subdirs(&self) -> io::Result<Vec<String>> {
        let mut out: Vec<String> = self
            .0
            .names()?
            .into_iter()
            .filter(|n| matches!(self.0.entry(n), Ok(Some(e)) if e.kind == Kind::Dir))
            .filter_map(|n| n.into_string().ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Opens the regular file `name` of this directory for reading.
    pub fn file(&self, name: &str) -> io::Result<File> {
        let f = self.0.open_file(OsStr::new(name))?;
        own_file(&f, name)?;
        Ok(f)
    }

    /// Empties the regular file `name` if it still holds exactly `len`
    /// bytes (everything in it was read): how a log another process
    /// appends to (`>>`, `O_APPEND`) is kept bounded without moving it.
    /// Only what is appended between the length check and the truncation,
    /// two system calls apart, can be lost.
    pub fn truncate_if_len(&self, name: &str, len: u64) -> io::Result<bool> {
        let f = self.0.open_file_write(OsStr::new(name))?;
        own_file(&f, name)?;
        if f.metadata()?.len() != len {
            return Ok(false);
        }
        f.set_len(0)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn nothing_outside_the_root_is_reached_through_a_symlink() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "shadow").unwrap();
        let svc = root.path().join("srv/services/auto-a/1/replica-1");
        std::fs::create_dir_all(&svc).unwrap();
        std::fs::write(svc.join("app.log"), "ok\n").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), svc.join("leak.log")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("srv/services/auto-b"))
            .unwrap();
        std::fs::create_dir(root.path().join("fifo-dir")).unwrap();
        nix::unistd::mkfifo(
            &root.path().join("fifo-dir/app.log"),
            nix::sys::stat::Mode::S_IRWXU,
        )
        .unwrap();

        let r = RootDir::open(root.path()).unwrap();
        let services = r.dir("srv/services").unwrap();
        assert_eq!(
            services.subdirs().unwrap(),
            ["auto-a"],
            "the symlink is no dir"
        );
        assert!(r.dir("srv/services/auto-b").is_err());
        assert!(r.dir("srv/../..").is_err());
        let rep = r.dir("srv/services/auto-a/1/replica-1").unwrap();
        let mut text = String::new();
        rep.file("app.log")
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "ok\n");
        assert!(rep.file("leak.log").is_err(), "a symlinked file is refused");
        assert!(
            r.dir("fifo-dir").unwrap().file("app.log").is_err(),
            "a fifo is no log"
        );
        assert!(rep.truncate_if_len("leak.log", 6).is_err(), "nor truncated");
        // Same filesystem: a hard link to a file outside the root.
        let secret2 = root.path().join("../").join(format!(
            "{}-secret",
            root.path().file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(&secret2, "db").unwrap();
        std::fs::hard_link(&secret2, svc.join("linked.log")).unwrap();
        assert!(
            rep.file("linked.log").is_err(),
            "a hard-linked file is refused"
        );
        assert!(rep.truncate_if_len("linked.log", 2).is_err());
        assert_eq!(std::fs::read(&secret2).unwrap(), b"db");
        std::fs::remove_file(&secret2).unwrap();
        assert!(
            !rep.truncate_if_len("app.log", 2).unwrap(),
            "more was written"
        );
        assert!(rep.truncate_if_len("app.log", 3).unwrap());
        assert_eq!(std::fs::read(svc.join("app.log")).unwrap(), b"");
        assert_eq!(
            std::fs::read_to_string(outside.path().join("secret")).unwrap(),
            "shadow"
        );
    }
}
