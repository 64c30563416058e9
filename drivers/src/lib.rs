//! How the steps of a change request touch a host: the [`Driver`] trait,
//! the [`LocalDriver`] (a host is a root directory on this machine), the
//! [`NoopDriver`] (benchmarks), and the [`conformance`] suite every driver
//! that touches a real root passes.

pub mod conformance;
mod digest;
mod error;
mod local;
mod noop;

use std::path::Path;

pub use digest::{file_sha256_hex, sha256_hex};
pub use error::DriverError;
pub use local::{LocalDriver, HOST_ROOT_ENV};
pub use noop::NoopDriver;
pub use vigie_wire::change::{Action, Command, Probe, StepResult};

/// How steps touch a host. One driver serves one host, one step at a time.
pub trait Driver: Send {
    /// A short stable name: "local", "noop".
    fn name(&self) -> &'static str;
    /// Called once per step before `apply`: save into `stash` (an existing empty
    /// directory owned by the caller, kept until the change is final, possibly
    /// across a crash and restart of the caller) whatever `undo` will need
    /// (e.g. the previous content and mode of a file, or the fact it was absent).
    /// Must not modify the host. Errors here mean the step is not attempted.
    fn prepare(&mut self, action: &Action, stash: &Path) -> Result<(), DriverError>;
    /// Runs the step. Never panics; failures are a StepResult with ok=false.
    fn apply(&mut self, action: &Action, stash: &Path) -> StepResult;
    /// Reverts `apply` using what `prepare` stashed. Must be correct whether
    /// `apply` never ran, ran partly (the caller crashed mid-step) or fully,
    /// and idempotent (may be called twice after a crash during undo).
    fn undo(&mut self, action: &Action, stash: &Path) -> StepResult;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(root: &Path) -> Box<dyn Driver> {
        Box::new(LocalDriver::new(root).unwrap())
    }

    #[test]
    fn local_driver_passes_the_conformance_suite() {
        conformance::run_all(&mut local);
    }

    fn every_kind() -> Vec<Action> {
        vec![
            Action::Run {
                command: Command::Argv(vec!["false".into()]),
                undo: None,
                env: vec![],
                cwd: None,
                timeout_ms: 1,
            },
            Action::File {
                path: "/etc/x".into(),
                content: b"x".to_vec(),
                mode: None,
            },
            Action::Remove { path: "/".into() },
            Action::Check {
                probe: Probe::Http {
                    url: "http://127.0.0.1:1/".into(),
                    status: 200,
                },
                retries: 1_000_000,
                interval_ms: 1_000_000,
                timeout_ms: 1_000_000,
            },
        ]
    }

    #[test]
    fn noop_succeeds_at_everything_and_touches_nothing() {
        let stash = tempfile::tempdir().unwrap();
        let mut driver = NoopDriver::new();
        assert_eq!(driver.name(), "noop");
        for action in every_kind() {
            driver.prepare(&action, stash.path()).unwrap();
            let applied = driver.apply(&action, stash.path());
            assert!(applied.ok, "{action:?}");
            assert!(applied.summary.contains(action.kind()));
            assert!(driver.undo(&action, stash.path()).ok);
        }
        assert_eq!(std::fs::read_dir(stash.path()).unwrap().count(), 0);
    }

    #[test]
    fn noop_does_not_even_need_a_stash() {
        let mut driver = NoopDriver::new();
        let nowhere = Path::new("/nonexistent/vigie/stash");
        for action in every_kind() {
            driver.prepare(&action, nowhere).unwrap();
            assert!(driver.apply(&action, nowhere).ok);
        }
    }
}
