//! Conformance: every path stays inside the host root (`..`, symlinks).

#![allow(clippy::unwrap_used)] // a test suite

use std::os::unix::fs::symlink;

use super::host::Host;
use super::Maker;
use crate::{Action, Command};

/// Host paths that lead outside the root: `..`, and symlinks inside the
/// root pointing outside (`/escape` to the outside directory, `/dangling`
/// to a file there that does not exist yet).
const ESCAPES: &[&str] = &[
    "../outside/secret",
    "/a/../../outside/secret",
    "/../outside/new",
    "/escape/secret",
    "/escape/new",
    "/escape",
    "/dangling",
    "/dir/escape/secret",
];

fn armed(make: Maker<'_>) -> Host {
    let host = Host::new(make);
    host.mkdir("/a", 0o755);
    host.mkdir("/dir", 0o755);
    symlink(&host.outside, host.path("/escape")).unwrap();
    symlink(host.outside.join("new"), host.path("/dangling")).unwrap();
    symlink(&host.outside, host.path("/dir/escape")).unwrap();
    host
}

/// Refused at prepare, or failed at apply, naming the path; nothing inside
/// or outside the root changed, whatever undo then does.
fn assert_refused(host: &mut Host, step: &Action, names: &str) {
    let world = host.world();
    let stash = host.new_stash();
    let message = match host.driver.prepare(step, &stash) {
        Err(e) => e.to_string(),
        Ok(()) => {
            let result = host.driver.apply(step, &stash);
            assert!(!result.ok, "{step:?} was applied: {}", result.summary);
            let _ = host.driver.undo(step, &stash);
            result.summary
        }
    };
    let named = names.trim_start_matches('/');
    assert!(
        message.contains(named) || message.contains("/escape") || message.contains("/dangling"),
        "{step:?}: the refusal does not name the path: {message}"
    );
    assert_eq!(host.world(), world, "{step:?} touched the world");
}

/// File and Remove steps, and a Run step's working directory, never reach
/// outside the root.
pub fn paths_cannot_escape_the_root(make: Maker<'_>) {
    let mut host = armed(make);
    for &path in ESCAPES {
        let write = Action::File {
            path: path.into(),
            content: b"pwned".to_vec(),
            mode: None,
        };
        assert_refused(&mut host, &write, path);
        assert_refused(&mut host, &Action::Remove { path: path.into() }, path);
        let run = Action::Run {
            command: Command::Shell("echo pwned > pwned; rm -f secret".into()),
            undo: Some(Command::Shell("echo pwned > pwned-undo".into())),
            env: vec![],
            cwd: Some(path.into()),
            timeout_ms: 30_000,
        };
        assert_refused(&mut host, &run, path);
    }
}

/// The root itself is not a target.
pub fn the_root_is_not_a_target(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.put("/etc/app.conf", b"x", 0o644);
    for path in ["/", "", ".", "/."] {
        let write = Action::File {
            path: path.into(),
            content: b"pwned".to_vec(),
            mode: None,
        };
        let world = host.world();
        for step in [write, Action::Remove { path: path.into() }] {
            let stash = host.new_stash();
            if host.driver.prepare(&step, &stash).is_ok() {
                let result = host.driver.apply(&step, &stash);
                assert!(!result.ok, "{step:?} was applied: {}", result.summary);
                let _ = host.driver.undo(&step, &stash);
            }
            assert_eq!(host.world(), world, "{step:?} touched the world");
        }
    }
}
