//! The File step: write a file atomically; undo restores the previous
//! content and mode, or the absence of the file and of the parent
//! directories the write created.
//!
//! Stash: `file.state` (`absent <created parents>` or `present <mode>`)
//! and, when present, `file.previous` (the previous bytes).

use std::fs::{self, File};
use std::io;
use std::path::Path;

use vigie_wire::change::StepResult;

use super::handle::{entry_of_file, DirFd, Kind};
use super::paths::{confine_target, make_parent, open_chain, Chain, HostPath};
use super::stash::{
    corrupt, not_prepared, open_stash, read_record, remove_file, sync_dir, temp_name, write_atomic,
    write_record,
};
use crate::digest::{read_sha256_hex, sha256_hex};
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

/// The regular file at the target, opened, and its mode; `None` if
/// nothing is there. A symlink or anything else is refused.
fn current(dir: &DirFd, target: &HostPath) -> Result<Option<(File, u32)>, DriverError> {
    let name = name(target)?;
    let not_a_file = || DriverError::NotAFile {
        path: target.display.clone(),
    };
    let depth = usize::MAX;
    match dir.entry(name).map_err(|e| target.error(depth, e))? {
        None => return Ok(None),
        Some(entry) if entry.kind == Kind::Symlink => return Err(target.target_is_symlink()),
        Some(entry) if entry.kind != Kind::File => return Err(not_a_file()),
        Some(_) => {}
    }
    // Checked again on the open file: the name may have changed since.
    let file = match dir.open_file(name) {
        Ok(file) => file,
        Err(e) if super::paths::gone(&e) => return Ok(None),
        Err(e) => return Err(target.error(depth, e)),
    };
    let entry = entry_of_file(&file).map_err(|e| target.error(depth, e))?;
    if entry.kind != Kind::File {
        return Err(not_a_file());
    }
    Ok(Some((file, entry.mode)))
}

/// The digest and mode of the regular file at the target, if any.
fn current_digest(
    dir: Option<&DirFd>,
    target: &HostPath,
) -> Result<Option<(String, u32)>, DriverError> {
    let Some(dir) = dir else { return Ok(None) };
    match current(dir, target)? {
        None => Ok(None),
        Some((file, mode)) => {
            let digest = read_sha256_hex(file).map_err(|e| DriverError::io(&target.full, e))?;
            Ok(Some((digest, mode)))
        }
    }
}

fn name(path: &HostPath) -> Result<&std::ffi::OsStr, DriverError> {
    path.name().ok_or_else(|| DriverError::IsRoot {
        path: path.display.clone(),
    })
}

pub(crate) fn prepare(root: &DirFd, raw: &str, stash: &Path) -> Result<(), DriverError> {
    let target = confine_target(root.label(), raw)?;
    if read_before(stash)?.is_some() {
        // Prepared already (the caller restarted): the first record is the
        // true "before"; the host may have changed since.
        tracing::debug!(event = "stash_kept", path = %target.display);
        return Ok(());
    }
    let chain = open_chain(root, &target)?;
    let found = match chain.parent(&target) {
        Some(dir) => current(dir, &target)?,
        None => None,
    };
    let before = match found {
        Some((file, mode)) => {
            copy_bytes(file, &target, &open_stash(stash)?)?;
            Before::Present { mode }
        }
        None => Before::Absent {
            created_parents: chain.missing,
        },
    };
    write_record(stash, STATE, &before.encode())
}

/// Copies bytes only (the stash copy is 0600, whatever the original's
/// mode), fsynced.
fn copy_bytes(mut from: File, target: &HostPath, stash: &DirFd) -> Result<(), DriverError> {
    let name = std::ffi::OsStr::new(PREVIOUS);
    remove_file(stash, name)?;
    let to = stash.show(name);
    let mut dst = stash
        .create_file(name)
        .map_err(|e| DriverError::io(&to, e))?;
    io::copy(&mut from, &mut dst)
        .map_err(|e| DriverError::io(&target.full, e))
        .and_then(|_| dst.sync_all().map_err(|e| DriverError::io(&to, e)))
}

pub(crate) fn apply(
    root: &DirFd,
    raw: &str,
    content: &[u8],
    mode: Option<u32>,
    stash: &Path,
) -> Result<StepResult, DriverError> {
    let target = confine_target(root.label(), raw)?;
    read_before(stash)?.ok_or_else(|| not_prepared(stash))?;
    let chain = open_chain(root, &target)?;
    let now = current_digest(chain.parent(&target), &target)?;
    let mode = mode
        .or(now.as_ref().map(|(_, mode)| *mode))
        .unwrap_or(DEFAULT_MODE);
    let dir = make_parent(root, &target)?;
    write_atomic(&dir, name(&target)?, content, mode)?;
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

pub(crate) fn undo(root: &DirFd, raw: &str, stash: &Path) -> Result<StepResult, DriverError> {
    let target = confine_target(root.label(), raw)?;
    let Some(before) = read_before(stash)? else {
        return Ok(StepResult::ok("nothing to undo: the step was not prepared"));
    };
    let name = name(&target)?;
    let chain = open_chain(root, &target)?;
    if let Some(dir) = chain.parent(&target) {
        // A write torn by a crash may have left its temporary file.
        remove_file(dir, &temp_name(name))?;
    }
    let now = current_digest(chain.parent(&target), &target)?.map(|(digest, _)| digest);
    let (summary, after) = match before {
        Before::Present { mode } => {
            let copy = stash.join(PREVIOUS);
            let bytes = fs::read(&copy).map_err(|e| DriverError::io(&copy, e))?;
            let dir = make_parent(root, &target)?;
            write_atomic(&dir, name, &bytes, mode)?;
            let summary = format!("restored {} bytes to {}", bytes.len(), target.display);
            (summary, Some(sha256_hex(&bytes)))
        }
        Before::Absent { created_parents } => {
            if let (Some(dir), Some(_)) = (chain.parent(&target), &now) {
                remove_file(dir, name)?;
            }
            remove_created_parents(&chain, &target, created_parents)?;
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
/// they are empty (something else may have been put there since), then
/// makes the last removal durable.
fn remove_created_parents(
    chain: &Chain,
    target: &HostPath,
    created: usize,
) -> Result<(), DriverError> {
    // `chain.dirs[i]` holds the directory `dirs[i + 1]`, named `names[i]`.
    let opened = chain.dirs.len() - 1;
    let parents = target.parent_names();
    let first = parents.len().saturating_sub(created);
    let mut changed = chain.parent(target).map(|_| opened);
    for i in (first..opened).rev() {
        let holder = &chain.dirs[i];
        match holder.rmdir(&parents[i]) {
            Ok(()) => changed = Some(i),
            Err(e) if super::paths::gone(&e) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(nix::libc::ENOTEMPTY | nix::libc::EEXIST)
                ) =>
            {
                break;
            }
            Err(e) => return Err(target.error(i + 1, e)),
        }
    }
    match changed {
        Some(i) => sync_dir(&chain.dirs[i]),
        None => Ok(()),
    }
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
        let root = DirFd::open(root.path()).unwrap();
        let err = undo(&root, "/f", stash.path()).unwrap_err();
        assert!(err.to_string().contains("sideways"), "{err}");
    }
}
