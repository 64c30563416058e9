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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::conformance::snapshot_tree;

    /// A move across filesystems interrupted while deleting the original
    /// (or while copying it back) leaves a partial tree at the target and
    /// the complete one in the stash: undo puts back the complete one.
    #[test]
    fn undo_replaces_a_remnant_of_an_interrupted_move() {
        let root = tempfile::tempdir().unwrap();
        let stash = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("srv/app")).unwrap();
        fs::write(root.path().join("srv/app/a"), b"a").unwrap();
        fs::write(root.path().join("srv/app/b"), b"b").unwrap();
        let before = snapshot_tree(root.path());

        prepare(root.path(), "/srv/app", stash.path()).unwrap();
        assert!(apply(root.path(), "/srv/app", stash.path()).unwrap().ok);
        fs::create_dir(root.path().join("srv/app")).unwrap();
        fs::write(root.path().join("srv/app/a"), b"a").unwrap();
        fs::create_dir(root.path().join("srv/.app.vigie-tmp")).unwrap();

        let undone = undo(root.path(), "/srv/app", stash.path()).unwrap();
        assert!(undone.ok, "{}", undone.summary);
        assert_eq!(snapshot_tree(root.path()), before);
        assert!(!stash.path().join(REMOVED).exists());
    }

    #[test]
    fn apply_reports_the_digest_and_undo_restores() {
        let root = tempfile::tempdir().unwrap();
        let stash = tempfile::tempdir().unwrap();
        fs::write(root.path().join("f"), b"abc").unwrap();
        prepare(root.path(), "f", stash.path()).unwrap();
        let applied = apply(root.path(), "f", stash.path()).unwrap();
        assert_eq!(applied.summary, "removed file /f");
        assert_eq!(
            applied.before_digest.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let undone = undo(root.path(), "f", stash.path()).unwrap();
        assert_eq!(undone.summary, "restored file /f");
        assert_eq!(undone.after_digest, applied.before_digest);
    }
}
