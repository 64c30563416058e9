//! The Remove step: move the target (file, symlink, directory tree) into
//! the stash; undo moves it back. Moving rather than copying means the
//! stash holds the very entry, modes and all, and a crash leaves it either
//! in the root or in the stash, never lost.
//!
//! Stash: `remove.state` (`absent` or `present`, the prepare marker) and
//! `removed` (the entry, once applied).

use std::ffi::OsStr;
use std::path::Path;

use vigie_wire::change::StepResult;

use super::handle::{entry_of_file, DirFd, Kind};
use super::paths::{confine_target, make_parent, open_parent, HostPath};
use super::stash::{corrupt, not_prepared, open_stash, read_record, temp_name, write_record};
use super::tree::{kind, move_entry, remove_tree};
use crate::digest::read_sha256_hex;
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

/// The digest of a regular file at `name`, `None` for anything else.
fn digest_if_file(dir: &DirFd, name: &OsStr) -> Result<Option<String>, DriverError> {
    if kind(dir, name)? != Some(Kind::File) {
        return Ok(None);
    }
    let at = |e| DriverError::io(dir.show(name), e);
    let file = dir.open_file(name).map_err(at)?;
    if entry_of_file(&file).map_err(at)?.kind != Kind::File {
        return Ok(None);
    }
    read_sha256_hex(file).map(Some).map_err(at)
}

fn describe(kind: Option<Kind>) -> &'static str {
    match kind {
        Some(Kind::Dir) => "directory",
        Some(Kind::File) => "file",
        _ => "entry",
    }
}

fn name(path: &HostPath) -> Result<&OsStr, DriverError> {
    path.name().ok_or_else(|| DriverError::IsRoot {
        path: path.display.clone(),
    })
}

/// What is at the target (its directory and kind), `None` if nothing. A
/// symlink target is refused: removing one is not a step's business.
fn find(root: &DirFd, target: &HostPath) -> Result<Option<(DirFd, Kind)>, DriverError> {
    let Some(dir) = open_parent(root, target)? else {
        return Ok(None);
    };
    match kind(&dir, name(target)?)? {
        None => Ok(None),
        Some(Kind::Symlink) => Err(target.target_is_symlink()),
        Some(kind) => Ok(Some((dir, kind))),
    }
}

pub(crate) fn prepare(root: &DirFd, raw: &str, stash: &Path) -> Result<(), DriverError> {
    let target = confine_target(root.label(), raw)?;
    if read_state(stash)?.is_some() {
        tracing::debug!(event = "stash_kept", path = %target.display);
        return Ok(());
    }
    let present = find(root, &target)?.is_some();
    write_record(stash, STATE, if present { "present" } else { "absent" })
}

pub(crate) fn apply(root: &DirFd, raw: &str, stash: &Path) -> Result<StepResult, DriverError> {
    let target = confine_target(root.label(), raw)?;
    read_state(stash)?.ok_or_else(|| not_prepared(stash))?;
    let Some((dir, found)) = find(root, &target)? else {
        return Ok(StepResult::ok(format!("{} was absent", target.display)));
    };
    let stash_dir = open_stash(stash)?;
    let removed = OsStr::new(REMOVED);
    if kind(&stash_dir, removed)?.is_some() {
        return Err(DriverError::BadStash {
            path: stash.to_path_buf(),
            reason: format!("it already holds a removed {}", target.display),
        });
    }
    let name = name(&target)?;
    let before = digest_if_file(&dir, name)?;
    move_entry(&dir, name, &stash_dir, removed)?;
    Ok(StepResult {
        before_digest: before,
        ..StepResult::ok(format!(
            "removed {} {}",
            describe(Some(found)),
            target.display
        ))
    })
}

pub(crate) fn undo(root: &DirFd, raw: &str, stash: &Path) -> Result<StepResult, DriverError> {
    let target = confine_target(root.label(), raw)?;
    if read_state(stash)?.is_none() {
        return Ok(StepResult::ok("nothing to undo: the step was not prepared"));
    }
    let stash_dir = open_stash(stash)?;
    let removed = OsStr::new(REMOVED);
    if kind(&stash_dir, removed)?.is_none() {
        return Ok(StepResult::ok(format!(
            "nothing to restore for {}",
            target.display
        )));
    }
    let dir = make_parent(root, &target)?;
    let name = name(&target)?;
    clear_remnant(&dir, name, &target)?;
    move_entry(&stash_dir, removed, &dir, name)?;
    Ok(StepResult {
        after_digest: digest_if_file(&dir, name)?,
        ..StepResult::ok(format!(
            "restored {} {}",
            describe(kind(&dir, name)?),
            target.display
        ))
    })
}

/// The stash holds the complete entry, so whatever is at the target is
/// what a cross-filesystem move was interrupted in the middle of deleting
/// (or copying back): it goes, and the stashed entry takes its place.
fn clear_remnant(dir: &DirFd, name: &OsStr, target: &HostPath) -> Result<(), DriverError> {
    remove_tree(dir, &temp_name(name))?;
    if kind(dir, name)?.is_some() {
        tracing::warn!(event = "remnant_removed", path = %target.display);
        remove_tree(dir, name)?;
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

        let handle = DirFd::open(root.path()).unwrap();
        prepare(&handle, "/srv/app", stash.path()).unwrap();
        assert!(apply(&handle, "/srv/app", stash.path()).unwrap().ok);
        fs::create_dir(root.path().join("srv/app")).unwrap();
        fs::write(root.path().join("srv/app/a"), b"a").unwrap();
        fs::create_dir(root.path().join("srv/.app.vigie-tmp")).unwrap();

        let undone = undo(&handle, "/srv/app", stash.path()).unwrap();
        assert!(undone.ok, "{}", undone.summary);
        assert_eq!(snapshot_tree(root.path()), before);
        assert!(!stash.path().join(REMOVED).exists());
    }

    #[test]
    fn apply_reports_the_digest_and_undo_restores() {
        let root = tempfile::tempdir().unwrap();
        let stash = tempfile::tempdir().unwrap();
        fs::write(root.path().join("f"), b"abc").unwrap();
        let handle = DirFd::open(root.path()).unwrap();
        prepare(&handle, "f", stash.path()).unwrap();
        let applied = apply(&handle, "f", stash.path()).unwrap();
        assert_eq!(applied.summary, "removed file /f");
        assert_eq!(
            applied.before_digest.as_deref(),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        let undone = undo(&handle, "f", stash.path()).unwrap();
        assert_eq!(undone.summary, "restored file /f");
        assert_eq!(undone.after_digest, applied.before_digest);
    }
}
