//! How a change reads in words: its state, a step's result and duration,
//! and the lines that say what moved between two views of it (`status`,
//! `watch`, and the progress of everything that follows changes).

use std::time::Duration;

use vigie_wire::change::StepResult;
use vigie_wire::tower::{ChangeState, ChangeView, StepStatus};

use super::escape;
use super::json;

pub fn state_text(s: &ChangeState) -> String {
    match s {
        ChangeState::Running { step } => format!("running step {}", json::step_number(*step)),
        ChangeState::RollingBack { step } => {
            format!("rolling back step {}", json::step_number(*step))
        }
        ChangeState::RolledBack {
            stopped: true,
            failed_step: None,
            ..
        } => "rolled back (stopped with the tower before its next step)".into(),
        ChangeState::RolledBack {
            failed_step,
            interrupted,
            ..
        } => match (failed_step, interrupted) {
            (_, true) => "rolled back (interrupted)".into(),
            (Some(s), false) => format!("rolled back (step {} failed)", json::step_number(*s)),
            (None, false) => "rolled back".into(),
        },
        ChangeState::RollbackFailed { stopped: true, .. } => {
            "ROLLBACK FAILED (stopped with the tower)".into()
        }
        ChangeState::RollbackFailed { .. } => "ROLLBACK FAILED".into(),
        other => other.word().into(),
    }
}

/// A step's duration: milliseconds under a second, else seconds.
pub(super) fn seconds(ms: u64) -> String {
    if ms < 1_000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", Duration::from_millis(ms).as_secs_f64())
    }
}

/// What a step's result says in one line: its summary and duration, and
/// for a failure the line of its error output that names the error
/// (`StepResult::error_lines`: psql's `ERROR:`, not its `^`).
fn result_text(r: Option<&StepResult>) -> String {
    let Some(r) = r else { return String::new() };
    let err = r.error_lines(1).into_iter().next();
    let summary = escape::field(&r.summary);
    match err {
        Some(e) if !r.ok => format!(
            ": {summary} in {} ({})",
            seconds(r.duration_ms),
            escape::field(e.trim())
        ),
        _ => format!(": {summary} in {}", seconds(r.duration_ms)),
    }
}

/// Lines describing what changed between two views of a change: forward
/// steps in order, then undone steps in the order they were undone.
pub fn progress_lines(prev: Option<&ChangeView>, now: &ChangeView) -> Vec<String> {
    let total = now.steps.len();
    let mut forward = Vec::new();
    let mut backward = Vec::new();
    for (i, s) in now.steps.iter().enumerate() {
        let before = prev.and_then(|p| p.steps.get(i)).map(|p| p.status);
        if before == Some(s.status) || matches!(s.status, StepStatus::Pending | StepStatus::Skipped)
        {
            continue;
        }
        let (word, detail) = match s.status {
            StepStatus::Running => ("started", String::new()),
            StepStatus::Succeeded => ("succeeded", result_text(s.result.as_ref())),
            StepStatus::Failed => ("FAILED", result_text(s.result.as_ref())),
            StepStatus::Undoing => ("undoing", String::new()),
            StepStatus::Undone => ("undone", result_text(s.undo.as_ref())),
            StepStatus::UndoFailed => ("UNDO FAILED", result_text(s.undo.as_ref())),
            StepStatus::Pending | StepStatus::Skipped => continue,
        };
        let line = format!(
            "{} {}: step {}/{} {} ({}) {word}{detail}",
            escape::field(&now.id),
            escape::field(&now.host),
            i + 1,
            total,
            escape::field(&s.name),
            escape::field(&s.kind)
        );
        if matches!(
            s.status,
            StepStatus::Undoing | StepStatus::Undone | StepStatus::UndoFailed
        ) {
            backward.push(line);
        } else {
            forward.push(line);
        }
    }
    backward.reverse();
    let mut lines = forward;
    lines.extend(backward);
    if prev.is_none_or(|p| p.state != now.state) && (now.state.is_final() || prev.is_none()) {
        lines.push(final_line(now));
    }
    lines
}

fn final_line(v: &ChangeView) -> String {
    format!(
        "{} {}: {}",
        escape::field(&v.id),
        escape::field(&v.host),
        state_text(&v.state)
    )
}
