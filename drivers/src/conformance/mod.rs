//! The one conformance suite every driver that touches a real root passes.

#![allow(clippy::unwrap_used)] // a test suite: a failure is a panic with its context
//! The conformance suite every driver that touches a real host root
//! passes. Each check takes a maker, which builds a driver for a fresh,
//! empty host root directory, and panics describing the first divergence.
//! Compiled always (not only under `cfg(test)`) so that other crates run
//! it against their drivers, and reuse [`snapshot_tree`] to prove a host
//! root is byte-identical after a rollback.

mod checks;
mod confinement;
mod crash;
mod files;
mod host;
mod race;
mod remove;
mod run;
mod snapshot;
mod undo;

use std::path::Path;

use crate::Driver;

pub use checks::{command_probe, http_probe};
pub use confinement::{paths_cannot_escape_the_root, the_root_is_not_a_target};
pub use crash::{
    garbled_after_apply_then_undo, second_prepare_keeps_the_first_stash, torn_new_file_then_undo,
    torn_overwrite_then_undo,
};
pub use files::{
    file_in_new_dirs_then_undo, file_keeps_mode_when_none_given, file_new_then_undo,
    file_over_a_directory_is_refused, file_overwrite_with_other_mode_then_undo,
    file_undo_keeps_dirs_that_are_not_empty,
};
pub use host::Host;
pub use race::swapped_directory_never_leads_outside;
pub use remove::{remove_absent, remove_file_then_undo, remove_tree_then_undo};
pub use run::{
    run_env_and_cwd, run_failing, run_keeps_only_output_tails, run_leaves_no_process_behind,
    run_reports_exit_code_and_output, run_timeout_kills_process_group, run_undo_command,
    undo_kills_what_an_interrupted_step_left_running,
};
pub use snapshot::snapshot_tree;
pub use undo::{undo_twice_is_harmless, undo_without_apply_changes_nothing};

/// Builds a driver for the host root it is given (a fresh directory).
pub type Maker<'a> = &'a mut dyn FnMut(&Path) -> Box<dyn Driver>;

/// Runs every check, each on fresh host roots.
pub fn run_all(make: &mut dyn FnMut(&Path) -> Box<dyn Driver>) {
    file_new_then_undo(make);
    file_overwrite_with_other_mode_then_undo(make);
    file_keeps_mode_when_none_given(make);
    file_in_new_dirs_then_undo(make);
    file_undo_keeps_dirs_that_are_not_empty(make);
    file_over_a_directory_is_refused(make);
    remove_file_then_undo(make);
    remove_tree_then_undo(make);
    remove_absent(make);
    undo_without_apply_changes_nothing(make);
    undo_twice_is_harmless(make);
    torn_overwrite_then_undo(make);
    torn_new_file_then_undo(make);
    garbled_after_apply_then_undo(make);
    second_prepare_keeps_the_first_stash(make);
    run_reports_exit_code_and_output(make);
    run_failing(make);
    run_env_and_cwd(make);
    run_keeps_only_output_tails(make);
    run_undo_command(make);
    run_timeout_kills_process_group(make);
    run_leaves_no_process_behind(make);
    undo_kills_what_an_interrupted_step_left_running(make);
    paths_cannot_escape_the_root(make);
    the_root_is_not_a_target(make);
    swapped_directory_never_leads_outside(make);
    command_probe(make);
    http_probe(make);
}
