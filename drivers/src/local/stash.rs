//! Small durable records in a step's stash directory, and the atomic
//! replace-a-file primitive shared by file writes and their undo.
//!
//! Records are files 0600 in a stash kept 0700.
//! A record is written to a temporary name, fsynced, then renamed: a
//! record either exists whole or not at all, so after a crash the stash
//! never says something half-true. A step's state record is written last
//! and marks the step as prepared.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::handle::DirFd;
use super::paths::gone;
use crate::DriverError;

/// The name of the temporary sibling an atomic write goes through. Fixed
/// (not random), so an undo after a torn write knows what to clean up.
pub(crate) fn temp_name(name: &OsStr) -> OsString {
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(".vigie-tmp");
    temp
}

/// Replaces `name` in `dir` with `bytes` and `mode` (all 12 permission
/// bits, regardless of the umask), durably: temp file, fsync, rename,
/// fsync dir. The temp file is created anew, never opened through
/// whatever (a symlink) someone left at its name.
pub(crate) fn write_atomic(
    dir: &DirFd,
    name: &OsStr,
    bytes: &[u8],
    mode: u32,
) -> Result<(), DriverError> {
    let temp = temp_name(name);
    remove_file(dir, &temp)?;
    let write = || -> io::Result<()> {
        let mut file = dir.create_file(&temp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
        file.sync_all()
    };
    write().map_err(|e| DriverError::io(dir.show(&temp), e))?;
    dir.rename(&temp, dir, name)
        .map_err(|e| DriverError::io(dir.show(name), e))?;
    sync_dir(dir)
}

/// Removes a file (or symlink) if it is there.
pub(crate) fn remove_file(dir: &DirFd, name: &OsStr) -> Result<(), DriverError> {
    match dir.unlink(name) {
        Ok(()) => Ok(()),
        Err(e) if gone(&e) => Ok(()),
        Err(e) => Err(DriverError::io(dir.show(name), e)),
    }
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &DirFd) -> Result<(), DriverError> {
    dir.sync().map_err(|e| DriverError::io(dir.label(), e))
}

/// Opens the caller's stash directory and keeps it private (0700): it
/// holds copies of host files and the entries removed from the host.
pub(crate) fn open_stash(stash: &Path) -> Result<DirFd, DriverError> {
    let bad = |e: io::Error| DriverError::BadStash {
        path: stash.to_path_buf(),
        reason: e.to_string(),
    };
    let dir = DirFd::open(stash).map_err(bad)?;
    dir.chmod(0o700).map_err(bad)?;
    Ok(dir)
}

/// Reads a record; `None` if it was never (completely) written.
pub(crate) fn read_record(stash: &Path, name: &str) -> Result<Option<String>, DriverError> {
    let path = stash.join(name);
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text.trim_end().to_string())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DriverError::io(path, e)),
    }
}

pub(crate) fn write_record(stash: &Path, name: &str, text: &str) -> Result<(), DriverError> {
    write_atomic(
        &open_stash(stash)?,
        OsStr::new(name),
        format!("{text}\n").as_bytes(),
        0o600,
    )
}

/// Like [`write_record`], whole or absent but not fsynced: for a record
/// that only has to outlive a crash of this process, not of the machine
/// (the processes a step mark names do not survive a power loss either).
pub(crate) fn write_record_unsynced(
    stash: &Path,
    name: &str,
    text: &str,
) -> Result<(), DriverError> {
    let dir = open_stash(stash)?;
    let (name, temp) = (OsStr::new(name), temp_name(OsStr::new(name)));
    remove_file(&dir, &temp)?;
    dir.create_file(&temp)
        .and_then(|mut file| file.write_all(format!("{text}\n").as_bytes()))
        .map_err(|e| DriverError::io(dir.show(&temp), e))?;
    dir.rename(&temp, &dir, name)
        .map_err(|e| DriverError::io(dir.show(name), e))
}

pub(crate) fn not_prepared(stash: &Path) -> DriverError {
    DriverError::BadStash {
        path: stash.to_path_buf(),
        reason: "the step was not prepared".into(),
    }
}

pub(crate) fn corrupt(stash: &Path, record: &str, text: &str) -> DriverError {
    DriverError::BadStash {
        path: stash.to_path_buf(),
        reason: format!("record {record} holds {text:?}"),
    }
}
