//! Conformance: `file` steps (atomic writes, modes, the previous bytes kept
//! for the undo).

#![allow(clippy::unwrap_used)] // a test suite

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::host::Host;
use super::Maker;
use crate::{sha256_hex, Action};

fn write(path: &str, content: &[u8], mode: Option<u32>) -> Action {
    Action::File {
        path: path.into(),
        content: content.to_vec(),
        mode,
    }
}

fn mode_of(host: &Host, path: &str) -> u32 {
    fs::symlink_metadata(host.path(path))
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// A new file: written with mode 0644, digests reported, undo removes it.
pub fn file_new_then_undo(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.mkdir("/etc", 0o755);
    let before = host.snapshot();
    let step = write("/etc/app.conf", b"port = 80\n", None);
    let (stash, result) = host.apply(&step);
    assert!(result.ok, "{}", result.summary);
    assert!(
        result.summary.contains("wrote 10 bytes to /etc/app.conf"),
        "{}",
        result.summary
    );
    assert_eq!(result.before_digest, None);
    assert_eq!(result.after_digest, Some(sha256_hex(b"port = 80\n")));
    assert_eq!(
        fs::read(host.path("/etc/app.conf")).unwrap(),
        b"port = 80\n"
    );
    assert_eq!(mode_of(&host, "/etc/app.conf"), 0o644, "default mode");

    let undone = host.undo(&step, &stash);
    assert_eq!(undone.before_digest, result.after_digest);
    assert_eq!(undone.after_digest, None);
    assert_eq!(host.snapshot(), before, "undo of a new file");
}

/// Overwrite with another mode; undo restores content and mode exactly.
pub fn file_overwrite_with_other_mode_then_undo(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/etc/app.conf", b"old\x00bytes", 0o600);
    let before = host.snapshot();
    let step = write("/etc/app.conf", b"new", Some(0o755));
    let (stash, result) = host.apply(&step);
    assert!(result.ok, "{}", result.summary);
    assert_eq!(result.before_digest, Some(sha256_hex(b"old\x00bytes")));
    assert_eq!(result.after_digest, Some(sha256_hex(b"new")));
    assert_eq!(fs::read(host.path("/etc/app.conf")).unwrap(), b"new");
    assert_eq!(mode_of(&host, "/etc/app.conf"), 0o755);

    let undone = host.undo(&step, &stash);
    assert_eq!(undone.after_digest, Some(sha256_hex(b"old\x00bytes")));
    assert_eq!(host.snapshot(), before, "undo of an overwrite");
}

/// Without a mode, an existing file keeps its own.
pub fn file_keeps_mode_when_none_given(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/app.conf", b"old", 0o640);
    let (_, result) = host.apply(&write("app.conf", b"new", None));
    assert!(result.ok, "{}", result.summary);
    assert_eq!(mode_of(&host, "/app.conf"), 0o640);
}

/// Parent directories are created, and removed again by undo.
pub fn file_in_new_dirs_then_undo(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/etc/other", b"x", 0o644);
    let before = host.snapshot();
    let step = write("/etc/a/b/c/app.conf", b"deep", Some(0o600));
    let (stash, result) = host.apply(&step);
    assert!(result.ok, "{}", result.summary);
    assert!(host.path("/etc/a/b/c").is_dir());
    host.undo(&step, &stash);
    assert_eq!(host.snapshot(), before, "created directories removed");
}

/// A created directory that has gained other entries since is kept.
pub fn file_undo_keeps_dirs_that_are_not_empty(make: Maker<'_>) {
    let mut host = Host::new(make);
    let step = write("/a/b/app.conf", b"x", None);
    let (stash, result) = host.apply(&step);
    assert!(result.ok, "{}", result.summary);
    host.put("/a/keep", b"k", 0o644);
    host.undo(&step, &stash);
    assert!(!host.path("/a/b").exists(), "empty created dir removed");
    assert_eq!(fs::read(host.path("/a/keep")).unwrap(), b"k");
}

/// Writing over a directory fails (at prepare or apply) and changes nothing.
pub fn file_over_a_directory_is_refused(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/etc/app.conf/inner", b"x", 0o644);
    let before = host.snapshot();
    let step = write("/etc/app.conf", b"new", None);
    let stash = host.new_stash();
    if host.driver.prepare(&step, &stash).is_ok() {
        let result = host.driver.apply(&step, &stash);
        assert!(!result.ok, "{}", result.summary);
        assert!(
            result.summary.contains("/etc/app.conf"),
            "{}",
            result.summary
        );
        host.undo(&step, &stash);
    }
    assert_eq!(host.snapshot(), before);
}
