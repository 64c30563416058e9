//! The Remove step: move the target (file, symlink, directory tree) into
//! the stash; undo moves it back. Moving rather than copying means the
//! stash holds the very entry, modes and all, and a crash leaves it either
//! in the root or in the stash, never lost.
//!
//! Stash: `remove.state` (`absent` or `present`, the prepare marker) and
//! `removed` (the entry, once applied).

use std::path::Path;

use vigie_wire::change::StepResult;

use super::paths::{confine_target, HostPath};
use super::stash::{corrupt, not_prepared, read_record, write_record};
use super::tree::{exists, move_entry, remove_tree};
use crate::digest::file_sha256_hex;
use crate::DriverError;

const STATE: &str = "remove.state";
const REMOVED: &str = "removed";

fn read_state(stash: &Path) -> Result<Option<bool>, DriverError> {
    match read_record(stash, STATE)?.as_deref() {
        None => Ok(None),
        Some("present") => Ok(Some(true)),
        Some("absent") => Ok(Some(false)),
        Some(other) => Err(corrupt(stash, STATE, other)),
    }
}

/// The digest of a regular file at `path`, `None` for anything else.
fn digest_if_file(path: &Path) -> Result<Option<String>, DriverError> {
    match path.symlink_metadata() {
        Ok(meta) if meta.is_file() => file_sha256_hex(path)
            .map(Some)
            .map_err(|e| DriverError::io(path, e)),
        _ => Ok(None),
    }
}

fn kind(path: &Path) -> &'static str {
    match path.symlink_metadata() {
        Ok(meta) if meta.is_dir() => "directory",
        Ok(meta) if meta.is_file() => "file",
        _ => "entry",
    }
}

pub(crate) fn prepare(root: &Path, raw: &str, stash: &Path) -> Result<(), DriverError> {
    let target = confine_target(root, raw)?;
    if read_state(stash)?.is_some() {
        tracing::debug!(event = "stash_kept", path = %target.display);
        return Ok(());
    }
    let present = exists(&target.full)?;
    write_record(stash, STATE, if present { "present" } else { "absent" })
}

pub(crate) fn apply(root: &Path, raw: &str, stash: &Path) -> Result<StepResult, DriverError> {
    let target = confine_target(root, raw)?;
    read_state(stash)?.ok_or_else(|| not_prepared(stash))?;
    if !exists(&target.full)? {
        return Ok(StepResult::ok(format!("{} was absent", target.display)));
    }
    let removed = stash.join(REMOVED);
    if exists(&removed)? {
        return Err(DriverError::BadStash {
            path: stash.to_path_buf(),
            reason: format!("it already holds a removed {}", target.display),
        });
    }
    let before = digest_if_file(&target.full)?;
    let kind = kind(&target.full);
    move_entry(&target.full, &removed)?;
    Ok(StepResult {
        before_digest: before,
        ..StepResult::ok(format!("removed {kind} {}", target.display))
    })
}

pub(crate) fn undo(root: &Path, raw: &str, stash: &Path) -> Result<StepResult, DriverError> {
    let target = confine_target(root, raw)?;
    if read_state(stash)?.is_none() {
        return Ok(StepResult::ok("nothing to undo: the step was not prepared"));
    }
    let removed = stash.join(REMOVED);
    if !exists(&removed)? {
        return Ok(StepResult::ok(format!(
            "nothing to restore for {}",
            target.display
        )));
    }
    clear_remnant(&target)?;
    move_entry(&removed, &target.full)?;
    Ok(StepResult {
        after_digest: digest_if_file(&target.full)?,
        ..StepResult::ok(format!(
            "restored {} {}",
            kind(&target.full),
            target.display
        ))
    })
}

/// The stash holds the complete entry, so whatever is at the target is
/// what a cross-filesystem move was interrupted in the middle of deleting
/// (or copying back): it goes, and the stashed entry takes its place.
fn clear_remnant(target: &HostPath) -> Result<(), DriverError> {
    if let Some((dir, name)) = target.split() {
        remove_tree(&dir.join(super::stash::temp_name(&name)))?;
    }
    if exists(&target.full)? {
        tracing::warn!(event = "remnant_removed", path = %target.display);
        remove_tree(&target.full)?;
    }
    Ok(())
}
