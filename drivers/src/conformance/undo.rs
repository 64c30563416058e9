//! Conformance: undo after a full, partial or absent apply, idempotent.

#![allow(clippy::unwrap_used)] // a test suite

use super::host::Host;
use super::Maker;
use crate::Action;

/// Steps whose undo needs only the stash (a Run step's undo is a command
/// the operator wrote, which runs whether or not the step did).
fn host_changing_steps() -> Vec<Action> {
    vec![
        Action::File {
            path: "/etc/app.conf".into(),
            content: b"new".to_vec(),
            mode: Some(0o600),
        },
        Action::File {
            path: "/var/lib/app/state".into(),
            content: b"new".to_vec(),
            mode: None,
        },
        Action::Remove {
            path: "/etc/app.conf".into(),
        },
        Action::Remove {
            path: "/srv".into(),
        },
    ]
}

fn furnished(make: Maker<'_>) -> Host {
    let host = Host::new(make);
    host.put("/etc/app.conf", b"old", 0o640);
    host.put("/srv/app/run", b"#!/bin/sh\n", 0o755);
    host
}

/// Prepared but never applied: undo (twice) changes nothing.
pub fn undo_without_apply_changes_nothing(make: Maker<'_>) {
    for step in host_changing_steps() {
        let mut host = furnished(make);
        let before = host.snapshot();
        let stash = host.new_stash();
        host.driver.prepare(&step, &stash).unwrap();
        assert_eq!(
            host.snapshot(),
            before,
            "prepare changed the host: {step:?}"
        );
        host.undo(&step, &stash);
        assert_eq!(host.snapshot(), before, "undo without apply: {step:?}");
        host.undo(&step, &stash);
        assert_eq!(host.snapshot(), before, "second undo: {step:?}");
    }
}

/// Applied, then undone twice (a crash during the first undo): the second
/// undo is harmless.
pub fn undo_twice_is_harmless(make: Maker<'_>) {
    for step in host_changing_steps() {
        let mut host = furnished(make);
        let before = host.snapshot();
        let (stash, result) = host.apply(&step);
        assert!(result.ok, "{step:?}: {}", result.summary);
        assert_ne!(host.snapshot(), before, "apply changed nothing: {step:?}");
        host.undo(&step, &stash);
        assert_eq!(host.snapshot(), before, "undo: {step:?}");
        host.undo(&step, &stash);
        assert_eq!(host.snapshot(), before, "second undo: {step:?}");
    }
}
