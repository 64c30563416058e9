//! Reading `environment.yml`: YAML text in, a validated [`Environment`]
//! out, or an error naming the file, the line and column, and the field.
//! Two passes like change files: an untyped one for syntax, then a typed
//! one through `serde_path_to_error` (unknown keys denied).

use std::fs;
use std::path::Path;

use serde_norway::Value;

use crate::error::{DeployError, Location};
use crate::spec::{build, Environment, RawEnvironment};

/// An environment file is a page of YAML; anything bigger is a mistake.
pub const MAX_ENV_FILE: usize = 256 * 1024;

pub fn load_environment(path: &Path) -> Result<Environment, DeployError> {
    read_environment(path).map(|(env, _)| env)
}

/// The environment in `path` and its text (what a deploy sends the tower).
pub fn read_environment(path: &Path) -> Result<(Environment, String), DeployError> {
    let file = path.display().to_string();
    let read_error = |source| DeployError::Read {
        file: file.clone(),
        source,
    };
    let len = fs::metadata(path).map_err(read_error)?.len();
    if len > MAX_ENV_FILE as u64 {
        return Err(DeployError::TooLarge {
            file,
            len: usize::try_from(len).unwrap_or(usize::MAX),
            max: MAX_ENV_FILE,
        });
    }
    let text = fs::read_to_string(path).map_err(read_error)?;
    parse_environment(&file, &text).map(|env| (env, text))
}

pub fn parse_environment(file: &str, text: &str) -> Result<Environment, DeployError> {
    if text.len() > MAX_ENV_FILE {
        return Err(DeployError::TooLarge {
            file: file.into(),
            len: text.len(),
            max: MAX_ENV_FILE,
        });
    }
    let invalid = |at, field: Option<String>, message: String| DeployError::Invalid {
        file: file.to_string(),
        at,
        field,
        message,
    };
    let tree: Value = serde_norway::from_str(text).map_err(|err| {
        let at = location(&err);
        let message = without_position(&err, at);
        // The parser points at the mapping; the operator wants the
        // second entry, the one to remove or rename.
        let at = at.map(|at| duplicate_at(text, at, &message).unwrap_or(at));
        invalid(at, None, format!("invalid YAML: {message}"))
    })?;
    if !matches!(tree, Value::Mapping(_)) {
        return Err(invalid(
            None,
            None,
            "an environment file is a mapping with app, environment, hosts and services".into(),
        ));
    }
    let deserializer = serde_norway::Deserializer::from_str(text);
    let raw: RawEnvironment = serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let at = location(&inner);
        let mut message = without_position(&inner, at);
        // The parser puts its own idea of the path in front; ours is
        // shown as the field.
        if let Some((head, rest)) = message.split_once(": ") {
            if !head.is_empty() && path.starts_with(head) {
                message = rest.to_string();
            }
        }
        let mut field = (path != ".").then_some(path);
        if let Some(missing) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            field = Some(match field {
                Some(outer) => format!("{outer}.{missing}"),
                None => missing.to_string(),
            });
            message = "is required".into();
        }
        invalid(at, field, message)
    })?;
    build(raw).map_err(|(field, message)| invalid(None, Some(field), message))
}

/// Where the second entry of a duplicate key is, for the parser's
/// "duplicate entry with key" error at the mapping's start `at`: the next
/// line of the same mapping (same indentation) that names the key again.
pub(crate) fn duplicate_at(text: &str, at: Location, message: &str) -> Option<Location> {
    let key = message
        .split_once("duplicate entry with key \"")?
        .1
        .split_once('"')?
        .0;
    let indent = at.column.checked_sub(1)?;
    let mut seen = 0;
    for (n, line) in text.lines().enumerate().skip(at.line.checked_sub(1)?) {
        let body = line.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let depth = line.len() - body.len();
        if depth < indent {
            return None;
        }
        let named = body
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with(':'));
        if depth == indent && named {
            seen += 1;
            if seen == 2 {
                return Some(Location {
                    line: n + 1,
                    column: at.column,
                });
            }
        }
    }
    None
}

fn location(err: &serde_norway::Error) -> Option<Location> {
    err.location().map(|at| Location {
        line: at.line(),
        column: at.column(),
    })
}

fn without_position(err: &serde_norway::Error, at: Option<Location>) -> String {
    let text = err.to_string();
    match at {
        Some(at) => text.replacen(&format!(" at line {} column {}", at.line, at.column), "", 1),
        None => text,
    }
}
