//! Reading change files: YAML text in, a validated `ChangeSpec` out, or an
//! error that says where the file is wrong.

use std::fs;
use std::path::Path;

use serde_norway::Value;
use serde_path_to_error::Segment;
use vigie_wire::change::ChangeSpec;

use crate::error::{ChangeError, InvalidChange, Location, StepRef};
use crate::schema::ChangeFile;
use crate::step::split_rule_field;

/// The largest change file accepted: the tower keeps each change request as
/// one Escalator value, so a bigger one could be read but never queued.
pub const MAX_CHANGE_FILE: usize = vigie_wire::limits::MAX_VALUE;

/// Reads and validates the change file at `path`. Errors name the file as
/// `path` displays.
pub fn load_change(path: &Path) -> Result<ChangeSpec, ChangeError> {
    let file = path.display().to_string();
    let read_error = |source| ChangeError::Read {
        file: file.clone(),
        source,
    };
    // Size first, so that a mistaken path to a huge file is not read whole.
    let len = fs::metadata(path).map_err(read_error)?.len();
    if len > MAX_CHANGE_FILE as u64 {
        return Err(ChangeError::TooLarge {
            file,
            len: usize::try_from(len).unwrap_or(usize::MAX),
            max: MAX_CHANGE_FILE,
        });
    }
    let text = fs::read_to_string(path).map_err(read_error)?;
    parse_change(&file, &text)
}

/// Validates the text of a change file; `path_for_messages` is how errors
/// name the file.
pub fn parse_change(path_for_messages: &str, text: &str) -> Result<ChangeSpec, ChangeError> {
    let file = path_for_messages;
    if text.len() > MAX_CHANGE_FILE {
        return Err(ChangeError::TooLarge {
            file: file.to_string(),
            len: text.len(),
            max: MAX_CHANGE_FILE,
        });
    }
    // A first, untyped pass: a syntax error is reported as such rather than
    // as whatever type error the typed pass meets first, and the tree gives
    // the names of steps for the typed pass's messages.
    let tree: Value = serde_norway::from_str(text).map_err(|err| syntax_error(file, &err))?;
    let shape_error = |message: &str| ChangeError::Syntax {
        file: file.to_string(),
        at: None,
        message: message.to_string(),
    };
    match &tree {
        Value::Mapping(_) => {}
        Value::Null => return Err(shape_error("the file is empty")),
        _ => {
            return Err(shape_error(
                "a change file is a mapping with `title` and `steps`",
            ))
        }
    }

    let deserializer = serde_norway::Deserializer::from_str(text);
    let parsed: ChangeFile = serde_path_to_error::deserialize(deserializer)
        .map_err(|err| invalid_error(file, &tree, err))?;
    Ok(ChangeSpec {
        title: parsed.title.0,
        steps: parsed.steps.0,
    })
}

fn location(err: &serde_norway::Error) -> Option<Location> {
    err.location().map(|at| Location {
        line: at.line(),
        column: at.column(),
    })
}

/// The parser's message without the position it appends: the position is
/// shown once, in front, as `file:line:col`.
fn message_without_position(err: &serde_norway::Error, at: Option<Location>) -> String {
    let text = err.to_string();
    match at {
        Some(at) => text.replacen(&format!(" at line {} column {}", at.line, at.column), "", 1),
        None => text,
    }
}

fn syntax_error(file: &str, err: &serde_norway::Error) -> ChangeError {
    let at = location(err);
    ChangeError::Syntax {
        file: file.to_string(),
        at,
        message: message_without_position(err, at),
    }
}

fn invalid_error(
    file: &str,
    tree: &Value,
    err: serde_path_to_error::Error<serde_norway::Error>,
) -> ChangeError {
    let path = err.path().clone();
    let segments: Vec<&Segment> = path.iter().collect();
    let path_text = path.to_string();
    let inner = err.into_inner();
    let at = location(&inner);
    let mut message = message_without_position(&inner, at);
    // The parser also puts its own idea of the path in front; ours is shown
    // as step and field instead.
    if let Some((head, rest)) = message.split_once(": ") {
        if !head.is_empty() && path_text.starts_with(head) {
            message = rest.to_string();
        }
    }

    let (step_index, field_segments) = match segments.as_slice() {
        [Segment::Map { key }, Segment::Seq { index }, rest @ ..] if key == "steps" => {
            (Some(*index), rest)
        }
        all => (None, all),
    };
    let (rule_field, rule_message) = split_rule_field(&message);
    let mut field = join_segments(field_segments);
    if let Some(rule_field) = rule_field {
        field = Some(nest(field, rule_field));
    }
    let mut message = rule_message.to_string();
    if let Some(missing) = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.strip_suffix('`'))
    {
        field = Some(nest(field, missing));
        message = "is required".to_string();
    }

    ChangeError::Invalid(Box::new(InvalidChange {
        file: file.to_string(),
        at,
        step: step_index.map(|index| StepRef {
            index: index + 1,
            name: step_name(tree, index),
        }),
        field,
        message,
    }))
}

/// The `name` the file gives to step `index` (0-based), if any.
fn step_name(tree: &Value, index: usize) -> Option<String> {
    let step = tree.get("steps")?.get(index)?;
    step.get("name")?
        .as_str()
        .map(|name| name.trim().to_string())
}

/// `inner` as a key of `outer` (`check` + `http` gives `check.http`).
fn nest(outer: Option<String>, inner: &str) -> String {
    match outer {
        Some(outer) => format!("{outer}.{inner}"),
        None => inner.to_string(),
    }
}

/// `check.command[0]`, or `None` for no segments.
fn join_segments(segments: &[&Segment]) -> Option<String> {
    let mut joined = String::new();
    for segment in segments {
        if !joined.is_empty() && !matches!(segment, Segment::Seq { .. }) {
            joined.push('.');
        }
        joined.push_str(&segment.to_string());
    }
    (!joined.is_empty()).then_some(joined)
}
