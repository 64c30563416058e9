//! What a maintenance deploy does when a change fails, decided without
//! I/O. Old and new code never run against the same schema: once the
//! migrations may have committed, the hosts not upgraded are never given
//! the previous version back; they stay in maintenance (503 with
//! `Retry-After`) until an operator deploys again with
//! `--from-maintenance`. Before that, they go back to the previous
//! version and leave maintenance.

use serde::{Deserialize, Serialize};
use vigie_wire::tower::{ChangeState, ChangeView, StepStatus};

use crate::compile::MIGRATE_STEP;

/// How the migrations step of the first host's upgrade went, as its
/// change reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MigrateRun {
    /// It never started (an earlier step failed) or is not in the change.
    NotRun,
    /// It succeeded: the migrations committed.
    Succeeded,
    /// The command exited non-zero: a migration in one transaction left
    /// nothing (ARCHITECTURE.md: one migration, one transaction).
    Exited,
    /// It started and ended without an exit code (timed out, killed,
    /// interrupted): it may have committed.
    Unknown,
}

impl MigrateRun {
    /// How the migrations step of `view` went, read the safe way round:
    /// only a step that never started reads as not run. One that started
    /// and has no result (its plug or agent cut while it ran, the change
    /// interrupted) may have committed a migration, and so may any step
    /// of a change whose outcome on the host is unknown (abandoned).
    pub fn of(view: &ChangeView) -> MigrateRun {
        let Some(step) = view.steps.iter().find(|s| s.name == MIGRATE_STEP) else {
            return MigrateRun::NotRun;
        };
        match &step.result {
            Some(r) if r.ok => MigrateRun::Succeeded,
            Some(r) if r.exit_code.is_some() => MigrateRun::Exited,
            Some(_) => MigrateRun::Unknown,
            None if view.state == ChangeState::Abandoned => MigrateRun::Unknown,
            None if matches!(step.status, StepStatus::Pending | StepStatus::Skipped) => {
                MigrateRun::NotRun
            }
            None => MigrateRun::Unknown,
        }
    }
}

/// Whether the schema may be ahead of the previous code: the first host's
/// upgrade got past its migrations (`failed` is the index of the host whose
/// upgrade failed; any host after the first means the first succeeded),
/// or a previous deploy already left hosts in maintenance on a migrated
/// schema (`schema_ahead`).
pub fn migrations_committed(failed: usize, first: MigrateRun, schema_ahead: bool) -> bool {
    schema_ahead || failed > 0 || matches!(first, MigrateRun::Succeeded | MigrateRun::Unknown)
}

/// What becomes of the hosts still in maintenance once a change failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// The migrations did not commit: these hosts get the previous
    /// version back (`compile_leave`), maintenance off.
    LeaveWithPrevious(Vec<String>),
    /// The migrations committed: these hosts keep answering the
    /// maintenance page, their old code stopped, until a deploy of a
    /// fixed version with `--from-maintenance`.
    StayInMaintenance(Vec<String>),
}

/// The recovery of `waiting` (hosts in maintenance, not upgraded).
pub fn recovery(waiting: Vec<String>, committed: bool) -> Recovery {
    if committed {
        Recovery::StayInMaintenance(waiting)
    } else {
        Recovery::LeaveWithPrevious(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|h| h.to_string()).collect()
    }

    #[test]
    fn a_first_upgrade_that_failed_before_or_in_its_migrations_goes_back() {
        for first in [MigrateRun::NotRun, MigrateRun::Exited] {
            let committed = migrations_committed(0, first, false);
            assert!(!committed, "{first:?}");
            assert_eq!(
                recovery(hosts(&["a", "b"]), committed),
                Recovery::LeaveWithPrevious(hosts(&["a", "b"]))
            );
        }
    }

    #[test]
    fn a_first_upgrade_that_failed_after_its_migrations_stays_in_maintenance() {
        let committed = migrations_committed(0, MigrateRun::Succeeded, false);
        assert_eq!(
            recovery(hosts(&["a", "b"]), committed),
            Recovery::StayInMaintenance(hosts(&["a", "b"]))
        );
    }

    #[test]
    fn a_migration_cut_without_an_exit_code_may_have_committed() {
        assert!(migrations_committed(0, MigrateRun::Unknown, false));
    }

    #[test]
    fn a_later_host_failing_means_the_first_migrated() {
        // The first host's change succeeded, so its migrations committed,
        // whatever this host's own change says.
        assert!(migrations_committed(1, MigrateRun::NotRun, false));
        assert_eq!(
            recovery(
                hosts(&["b"]),
                migrations_committed(1, MigrateRun::NotRun, false)
            ),
            Recovery::StayInMaintenance(hosts(&["b"]))
        );
    }

    fn view(status: StepStatus, result: Option<(bool, Option<i32>)>) -> ChangeView {
        let result = result.map(|(ok, exit_code)| vigie_wire::change::StepResult {
            ok,
            exit_code,
            ..Default::default()
        });
        ChangeView {
            id: "c1".into(),
            host: "a".into(),
            seq: 1,
            tenant: "t".into(),
            operator: "op".into(),
            title: "upgrade".into(),
            state: ChangeState::RolledBack {
                failed_step: Some(1),
                interrupted: true,
                stopped: false,
            },
            steps: vec![vigie_wire::tower::StepView {
                name: MIGRATE_STEP.into(),
                kind: "run".into(),
                status,
                result,
                undo: None,
            }],
            submitted_ms: 0,
            updated_ms: 0,
            waiting: None,
        }
    }

    /// Issue 19: a migrations step cut while it ran (one migration may
    /// have committed) was read as never run, and the previous version
    /// went back on the migrated schema.
    #[test]
    fn a_migrations_step_cut_while_it_ran_may_have_committed() {
        for status in [
            StepStatus::Running,
            StepStatus::Failed,
            StepStatus::Undoing,
            StepStatus::Undone,
        ] {
            let run = MigrateRun::of(&view(status, None));
            assert_eq!(run, MigrateRun::Unknown, "{status:?}");
            assert!(migrations_committed(0, run, false), "{status:?}");
        }
        let cut = MigrateRun::of(&view(StepStatus::Failed, Some((false, None))));
        assert_eq!(cut, MigrateRun::Unknown);
        let mut abandoned = view(StepStatus::Pending, None);
        abandoned.state = ChangeState::Abandoned;
        assert_eq!(MigrateRun::of(&abandoned), MigrateRun::Unknown);
    }

    #[test]
    fn only_a_step_that_never_started_reads_as_not_run() {
        for status in [StepStatus::Pending, StepStatus::Skipped] {
            assert_eq!(MigrateRun::of(&view(status, None)), MigrateRun::NotRun);
        }
        let ok = view(StepStatus::Succeeded, Some((true, Some(0))));
        assert_eq!(MigrateRun::of(&ok), MigrateRun::Succeeded);
        let exited = view(StepStatus::Failed, Some((false, Some(3))));
        assert_eq!(MigrateRun::of(&exited), MigrateRun::Exited);
    }

    #[test]
    fn a_schema_migrated_by_an_earlier_deploy_never_gets_old_code_back() {
        assert!(migrations_committed(0, MigrateRun::NotRun, true));
    }
}
