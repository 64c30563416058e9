//! What a change that failed says in a rollout's lines: its failed step
//! and the first lines of the error its host wrote (a failed migration's
//! SQL error, not the `^` psql ends it with). The daemon reads them from
//! the change's final view and gives them to the machine before the
//! change's end, so they are said live, where the operator looks. The
//! text is the host's, cut to a bounded length: whoever shows a line
//! escapes it (the CLI's `escape.rs`, the web's templates).

use vigie_wire::tower::{ChangeState, ChangeView};

/// Error lines said per failed change.
pub const ERROR_LINES: usize = 3;
/// Characters kept of one line of a host's error.
const MAX_CHARS: usize = 300;

/// The lines a failed change says: `step N/M (NAME) failed: SUMMARY`,
/// then its error's first lines, indented (none when it did not fail a
/// step: it succeeded, was cancelled, or never ran).
pub fn failure_lines(view: &ChangeView) -> Vec<String> {
    let failed = match view.state {
        ChangeState::RolledBack { failed_step, .. }
        | ChangeState::RollbackFailed { failed_step, .. } => failed_step,
        _ => return Vec::new(),
    };
    let found = failed
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| Some((i, view.steps.get(i)?)))
        .or_else(|| {
            view.steps
                .iter()
                .enumerate()
                .find(|(_, s)| s.result.as_ref().is_some_and(|r| !r.ok))
        });
    let Some((i, step)) = found else {
        return Vec::new();
    };
    let Some(result) = step.result.as_ref() else {
        return Vec::new();
    };
    let mut lines = vec![format!(
        "step {}/{} ({}) failed: {}",
        i + 1,
        view.steps.len(),
        cut(&step.name),
        cut(&result.summary)
    )];
    lines.extend(
        result
            .error_lines(ERROR_LINES)
            .into_iter()
            .map(|l| format!("  {}", cut(l))),
    );
    lines
}

/// `text`'s first [`MAX_CHARS`] characters, `…` when cut.
fn cut(text: &str) -> String {
    match text.char_indices().nth(MAX_CHARS) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use vigie_wire::change::StepResult;
    use vigie_wire::tower::{ChangeState, ChangeView, StepStatus, StepView};

    use super::*;

    fn step(name: &str, status: StepStatus, result: Option<StepResult>) -> StepView {
        StepView {
            name: name.into(),
            kind: "run".into(),
            status,
            result,
            undo: None,
        }
    }

    fn view(state: ChangeState, steps: Vec<StepView>) -> ChangeView {
        ChangeView {
            id: "c-9".into(),
            host: "shop-1".into(),
            seq: 1,
            tenant: "default".into(),
            operator: "admin".into(),
            title: "t".into(),
            state,
            steps,
            submitted_ms: 0,
            updated_ms: 0,
            waiting: None,
        }
    }

    /// Issue 19: a failed migration's rollout lines carry psql's error
    /// (the host's bytes as they came, escape and all: the reader escapes
    /// them), never just its caret; a change that succeeded says nothing.
    #[test]
    fn a_failed_migration_says_its_sql_error() {
        let failed = StepResult {
            stderr_tail: "psql:m.sql:3: ERROR:  column \"missing_column\" does not exist \x1b[2J\n\
                          LINE 1: INSERT INTO notes (missing_column) VALUES ('x');\n\
                          \x20                          ^\n"
                .into(),
            ..StepResult::failed("exit 2")
        };
        let ok = Some(StepResult::ok("exit 0"));
        let v = view(
            ChangeState::RolledBack {
                failed_step: Some(1),
                interrupted: false,
                stopped: false,
            },
            vec![
                step("fetch", StepStatus::Undone, ok.clone()),
                step(
                    "run the pending migrations",
                    StepStatus::Failed,
                    Some(failed),
                ),
                step("start", StepStatus::Skipped, None),
            ],
        );
        assert_eq!(
            failure_lines(&v),
            [
                "step 2/3 (run the pending migrations) failed: exit 2",
                "  psql:m.sql:3: ERROR:  column \"missing_column\" does not exist \x1b[2J",
                "  LINE 1: INSERT INTO notes (missing_column) VALUES ('x');",
            ]
        );
        let done = view(
            ChangeState::Succeeded,
            vec![step("fetch", StepStatus::Succeeded, ok)],
        );
        assert!(failure_lines(&done).is_empty());
        let long = "x".repeat(MAX_CHARS + 10);
        assert_eq!(cut(&long).chars().count(), MAX_CHARS + 1);
    }
}
