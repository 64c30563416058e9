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
        invalid(
            at,
            None,
            format!("invalid YAML: {}", without_position(&err, at)),
        )
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
