//! Conformance: a step cut off mid-way is undone correctly after a crash.

#![allow(clippy::unwrap_used)] // a test suite

use super::host::Host;
use super::Maker;
use crate::Action;

/// The caller crashed in the middle of a file write, leaving the target
/// garbled; undo from the stash restores the file exactly.
pub fn torn_overwrite_then_undo(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/etc/app.conf", b"the original content\n", 0o640);
    let before = host.snapshot();
    let step = Action::File {
        path: "/etc/app.conf".into(),
        content: vec![b'n'; 10_000],
        mode: Some(0o644),
    };
    let stash = host.new_stash();
    host.driver.prepare(&step, &stash).unwrap();
    // The torn write: half old, half garbage, wrong mode.
    host.put("/etc/app.conf", b"the orig\xff\xfe", 0o600);
    host.undo(&step, &stash);
    assert_eq!(host.snapshot(), before, "undo after a torn overwrite");
    host.undo(&step, &stash);
    assert_eq!(host.snapshot(), before, "second undo");
}

/// A torn write of a new file in new directories: undo removes the
/// partial file and the directories.
pub fn torn_new_file_then_undo(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/var/keep", b"k", 0o644);
    let before = host.snapshot();
    let step = Action::File {
        path: "/var/lib/app/state".into(),
        content: vec![b'n'; 10_000],
        mode: None,
    };
    let stash = host.new_stash();
    host.driver.prepare(&step, &stash).unwrap();
    host.put("/var/lib/app/state", &[b'n'; 100], 0o600);
    host.undo(&step, &stash);
    assert_eq!(host.snapshot(), before, "undo after a torn new file");
}

/// Applied, then the target garbled by someone else: undo still restores
/// what was there before the step.
pub fn garbled_after_apply_then_undo(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/app.conf", b"before", 0o600);
    let before = host.snapshot();
    let step = Action::File {
        path: "/app.conf".into(),
        content: b"after".to_vec(),
        mode: None,
    };
    let (stash, result) = host.apply(&step);
    assert!(result.ok, "{}", result.summary);
    host.put("/app.conf", b"\x00garbage", 0o777);
    host.undo(&step, &stash);
    assert_eq!(host.snapshot(), before);
}

/// Preparing again (the caller restarted and re-prepared a step whose
/// apply had started) must not stash the torn state as the "before".
pub fn second_prepare_keeps_the_first_stash(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/app.conf", b"before", 0o600);
    let before = host.snapshot();
    let step = Action::File {
        path: "/app.conf".into(),
        content: b"after".to_vec(),
        mode: Some(0o644),
    };
    let stash = host.new_stash();
    host.driver.prepare(&step, &stash).unwrap();
    let result = host.driver.apply(&step, &stash);
    assert!(result.ok, "{}", result.summary);
    host.driver.prepare(&step, &stash).unwrap();
    host.undo(&step, &stash);
    assert_eq!(host.snapshot(), before);
}
