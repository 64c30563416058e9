//! How the steps of a change request touch a host: the [`Driver`] trait,
//! the [`LocalDriver`] (a host is a root directory on this machine), the
//! [`NoopDriver`] (benchmarks), and the [`conformance`] suite every driver
//! that touches a real root passes.

pub mod conformance;
mod digest;
mod error;
mod local;
mod noop;
mod schema;

use std::path::Path;

pub use digest::{file_sha256_hex, sha256_hex};
pub use error::DriverError;
pub use local::{LocalDriver, RootDir, HOST_ROOT_ENV, SERVICE_ENV, STEP_MARK_ENV};
pub use noop::NoopDriver;
pub use schema::{options_of, OptionKind, OptionSpec, DRIVERS};
pub use vigie_wire::change::{Action, Command, Probe, StepResult};

/// Where a driver copies every byte a step's commands print (besides the
/// tail kept in the step's result): the plug's log store. Called from the
/// output reader threads, so it must be cheap and never block for long.
pub trait OutputSink: Send + Sync {
    fn write(&self, stream: &'static str, bytes: &[u8]);
}

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

    /// Each check on its own too, so a failure names its check.
    macro_rules! conformance_checks {
        ($($check:ident),* $(,)?) => {
            mod local_conformance {
                $(
                    #[test]
                    fn $check() {
                        crate::conformance::$check(&mut super::local);
                    }
                )*
            }
        };
    }

    conformance_checks!(
        file_new_then_undo,
        file_overwrite_with_other_mode_then_undo,
        file_keeps_mode_when_none_given,
        file_in_new_dirs_then_undo,
        file_undo_keeps_dirs_that_are_not_empty,
        file_over_a_directory_is_refused,
        remove_file_then_undo,
        remove_tree_then_undo,
        remove_absent,
        undo_without_apply_changes_nothing,
        undo_twice_is_harmless,
        torn_overwrite_then_undo,
        torn_new_file_then_undo,
        garbled_after_apply_then_undo,
        second_prepare_keeps_the_first_stash,
        run_reports_exit_code_and_output,
        run_failing,
        run_env_and_cwd,
        run_keeps_only_output_tails,
        run_undo_command,
        run_timeout_kills_process_group,
        run_leaves_no_process_behind,
        undo_kills_what_an_interrupted_step_left_running,
        paths_cannot_escape_the_root,
        the_root_is_not_a_target,
        swapped_directory_never_leads_outside,
        command_probe,
        http_probe,
    );

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
