//! The File step: write a file atomically; undo restores the previous
//! content and mode, or the absence of the file and of the parent
//! directories the write created.
//!
//! Stash: `file.state` (`absent <created parents>` or `present <mode>`)
//! and, when present, `file.previous` (the previous bytes).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use vigie_wire::change::StepResult;

use super::paths::{confine_target, gone, missing_parents, HostPath};
use super::stash::{
    corrupt, not_prepared, read_record, sync_dir, temp_name, write_atomic, write_record,
};
use crate::digest::{file_sha256_hex, sha256_hex};
use crate::DriverError;

const STATE: &str = "file.state";
const PREVIOUS: &str = "file.previous";
const DEFAULT_MODE: u32 = 0o644;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    /// The file did not exist; the write creates that many parent dirs.
    Absent {
        created_parents: usize,
    },
    Present {
        mode: u32,
    },
}

impl Before {
    fn encode(self) -> String {
        match self {
            Before::Absent { created_parents } => format!("absent {created_parents}"),
            Before::Present { mode } => format!("present {mode:o}"),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        match text.split_once(' ')? {
            ("absent", n) => Some(Before::Absent {
                created_parents: n.parse().ok()?,
            }),
            ("present", mode) => Some(Before::Present {
                mode: u32::from_str_radix(mode, 8).ok()?,
            }),
            _ => None,
        }
    }
}

fn read_before(stash: &Path) -> Result<Option<Before>, DriverError> {
    match read_record(stash, STATE)? {
        None => Ok(None),
        Some(text) => Before::decode(&text)
            .map(Some)
            .ok_or_else(|| corrupt(stash, STATE, &text)),
    }
}

/// What is at the target now: `None` if nothing, the digest and mode of a
/// regular file, an error for anything else.
fn current(path: &HostPath) -> Result<Option<(String, u32)>, DriverError> {
    match path.full.symlink_metadata() {
        Ok(meta) if meta.is_file() => {
            let digest = file_sha256_hex(&path.full).map_err(|e| DriverError::io(&path.full, e))?;
            Ok(Some((digest, meta.permissions().mode() & 0o7777)))
        }
        Ok(_) => Err(DriverError::NotAFile {
            path: path.display.clone(),
        }),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(DriverError::io(&path.full, e)),
    }
}

fn split(path: &HostPath) -> Result<(&Path, std::ffi::OsString), DriverError> {
    path.split().ok_or_else(|| DriverError::IsRoot {
        path: path.display.clone(),
    })
}

pub(crate) fn prepare(root: &Path, raw: &str, stash: &Path) -> Result<(), DriverError> {
    let target = confine_target(root, raw)?;
    if read_before(stash)?.is_some() {
        // Prepared already (the caller restarted): the first record is the
        // true "before"; the host may have changed since.
        tracing::debug!(event = "stash_kept", path = %target.display);
        return Ok(());
    }
    let before = match current(&target)? {
        Some((_, mode)) => {
            let copy = stash.join(PREVIOUS);
            copy_bytes(&target.full, &copy)?;
            Before::Present { mode }
        }
        None => Before::Absent {
            created_parents: missing_parents(&target)?,
        },
    };
    write_record(stash, STATE, &before.encode())
}

/// Copies bytes only (the stash copy stays writable by us, whatever the
/// original's mode), fsynced.
fn copy_bytes(from: &Path, to: &Path) -> Result<(), DriverError> {
    let mut src = File::open(from).map_err(|e| DriverError::io(from, e))?;
    let mut dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(to)
        .map_err(|e| DriverError::io(to, e))?;
    io::copy(&mut src, &mut dst)
        .and_then(|_| dst.sync_all())
        .map_err(|e| DriverError::io(to, e))
}

pub(crate) fn apply(
    root: &Path,
    raw: &str,
    content: &[u8],
    mode: Option<u32>,
    stash: &Path,
) -> Result<StepResult, DriverError> {
    let target = confine_target(root, raw)?;
    read_before(stash)?.ok_or_else(|| not_prepared(stash))?;
    let (dir, name) = split(&target)?;
    let now = current(&target)?;
    let mode = mode
        .or(now.as_ref().map(|(_, mode)| *mode))
        .unwrap_or(DEFAULT_MODE);
    fs::create_dir_all(dir).map_err(|e| DriverError::io(dir, e))?;
    write_atomic(dir, &name, content, mode)?;
    Ok(StepResult {
        before_digest: now.map(|(digest, _)| digest),
        after_digest: Some(sha256_hex(content)),
        ..StepResult::ok(format!(
            "wrote {} bytes to {}",
            content.len(),
            target.display
        ))
    })
}

pub(crate) fn undo(root: &Path, raw: &str, stash: &Path) -> Result<StepResult, DriverError> {
    let target = confine_target(root, raw)?;
    let Some(before) = read_before(stash)? else {
        return Ok(StepResult::ok("nothing to undo: the step was not prepared"));
    };
    let (dir, name) = split(&target)?;
    // A write torn by a crash may have left its temporary file.
    let temp = dir.join(temp_name(&name));
    match fs::remove_file(&temp) {
        Ok(()) => tracing::debug!(event = "temp_removed", path = %temp.display()),
        Err(e) if gone(&e) => {}
        Err(e) => return Err(DriverError::io(&temp, e)),
    }
    let now = current(&target)?.map(|(digest, _)| digest);
    let (summary, after) = match before {
        Before::Present { mode } => {
            let copy = stash.join(PREVIOUS);
            let bytes = fs::read(&copy).map_err(|e| DriverError::io(&copy, e))?;
            fs::create_dir_all(dir).map_err(|e| DriverError::io(dir, e))?;
            write_atomic(dir, &name, &bytes, mode)?;
            let summary = format!("restored {} bytes to {}", bytes.len(), target.display);
            (summary, Some(sha256_hex(&bytes)))
        }
        Before::Absent { created_parents } => {
            if now.is_some() {
                fs::remove_file(&target.full).map_err(|e| DriverError::io(&target.full, e))?;
            }
            remove_created_parents(&target, created_parents)?;
            (format!("removed {} (it was absent)", target.display), None)
        }
    };
    Ok(StepResult {
        before_digest: now,
        after_digest: after,
        ..StepResult::ok(summary)
    })
}

/// Removes the directories the write created, deepest first, as long as
/// they are empty (something else may have been put there since).
fn remove_created_parents(target: &HostPath, created: usize) -> Result<(), DriverError> {
    let mut synced = false;
    for dir in target.ancestors(created) {
        match fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if gone(&e) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOTEMPTY | nix::libc::EEXIST)
                ) =>
            {
                sync_dir(dir)?;
                synced = true;
                break;
            }
            Err(e) => return Err(DriverError::io(dir, e)),
        }
    }
    if !synced {
        // The entry removed last lives in the nearest surviving ancestor.
        let survivor = target
            .full
            .ancestors()
            .skip(1)
            .find(|dir| dir.symlink_metadata().is_ok());
        if let Some(dir) = survivor {
            sync_dir(dir)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_records_round_trip() {
        for before in [
            Before::Absent { created_parents: 3 },
            Before::Present { mode: 0o4755 },
        ] {
            assert_eq!(Before::decode(&before.encode()), Some(before));
        }
        assert_eq!(Before::decode("present 9"), None);
        assert_eq!(Before::decode("gone"), None);
    }

    #[test]
    fn undo_reports_a_corrupt_stash() {
        let root = tempfile::tempdir().unwrap();
        let stash = tempfile::tempdir().unwrap();
        fs::write(stash.path().join(STATE), "sideways\n").unwrap();
        let err = undo(root.path(), "/f", stash.path()).unwrap_err();
        assert!(err.to_string().contains("sideways"), "{err}");
    }
}
