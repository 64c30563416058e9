//! Small durable records in a step's stash directory, and the atomic
//! replace-a-file primitive shared by file writes and their undo.
//!
//! A record is written to a temporary name, fsynced, then renamed: a
//! record either exists whole or not at all, so after a crash the stash
//! never says something half-true. A step's state record is written last
//! and marks the step as prepared.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::DriverError;

/// The name of the temporary sibling an atomic write goes through. Fixed
/// (not random), so an undo after a torn write knows what to clean up.
pub(crate) fn temp_name(name: &OsStr) -> OsString {
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(".vigie-tmp");
    temp
}

/// Replaces `dir/name` with `bytes` and `mode` (all 12 permission bits,
/// regardless of the umask), durably: temp file, fsync, rename, fsync dir.
pub(crate) fn write_atomic(
    dir: &Path,
    name: &OsStr,
    bytes: &[u8],
    mode: u32,
) -> Result<(), DriverError> {
    let temp = dir.join(temp_name(name));
    let target = dir.join(name);
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))?;
        file.sync_all()
    };
    write().map_err(|e| DriverError::io(&temp, e))?;
    fs::rename(&temp, &target).map_err(|e| DriverError::io(&target, e))?;
    sync_dir(dir)
}

/// Makes a directory's entries (creations, renames, removals) durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), DriverError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| DriverError::io(dir, e))
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
        stash,
        OsStr::new(name),
        format!("{text}\n").as_bytes(),
        0o600,
    )
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
