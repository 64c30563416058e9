//! Conformance: `remove` steps and their undo.

#![allow(clippy::unwrap_used)] // a test suite

use super::host::Host;
use super::Maker;
use crate::{sha256_hex, Action};

fn remove(path: &str) -> Action {
    Action::Remove { path: path.into() }
}

/// A file with an unusual mode: removed, then restored exactly.
pub fn remove_file_then_undo(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/etc/app.conf", b"keep me", 0o4750);
    host.put("/etc/sibling", b"s", 0o644);
    let before = host.snapshot();
    let step = remove("/etc/app.conf");
    let (stash, result) = host.apply(&step);
    assert!(result.ok, "{}", result.summary);
    assert!(
        result.summary.contains("/etc/app.conf"),
        "{}",
        result.summary
    );
    assert_eq!(result.before_digest, Some(sha256_hex(b"keep me")));
    assert!(!host.path("/etc/app.conf").exists());
    assert!(host.path("/etc/sibling").exists());
    host.undo(&step, &stash);
    assert_eq!(host.snapshot(), before);
}

/// A directory tree (nested dirs, modes, an inner symlink, an empty dir):
/// removed, then restored exactly.
pub fn remove_tree_then_undo(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/srv/app/bin/run", b"#!/bin/sh\n", 0o755);
    host.put("/srv/app/etc/conf", b"a = 1\n", 0o600);
    host.mkdir("/srv/app/empty", 0o700);
    host.mkdir("/srv/app/etc", 0o750);
    std::os::unix::fs::symlink("bin/run", host.path("/srv/app/current")).unwrap();
    let before = host.snapshot();
    let step = remove("/srv/app");
    let (stash, result) = host.apply(&step);
    assert!(result.ok, "{}", result.summary);
    assert!(!host.path("/srv/app").exists());
    assert!(host.path("/srv").is_dir());
    host.undo(&step, &stash);
    assert_eq!(host.snapshot(), before);
}

/// Removing what is not there succeeds and says so.
pub fn remove_absent(make: Maker<'_>) {
    let mut host = Host::new(make);
    let before = host.snapshot();
    let step = remove("/no/such/thing");
    let (stash, result) = host.apply(&step);
    assert!(result.ok, "{}", result.summary);
    assert!(result.summary.contains("absent"), "{}", result.summary);
    assert_eq!(result.before_digest, None);
    host.undo(&step, &stash);
    assert_eq!(host.snapshot(), before);
}
