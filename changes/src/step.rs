//! The rules that tie a step's keys together, and the defaults a step gets.

use std::fmt;

use vigie_wire::change::{Action, Probe, Step};

use crate::raw::{RawProbe, RawStep};
use crate::values::{CommandSpec, DurationMs};

/// How long a `run` step may take when the file does not say.
pub const DEFAULT_RUN_TIMEOUT_MS: u64 = 300_000;
/// How long one attempt of a `check` may take when the file does not say.
pub const DEFAULT_CHECK_TIMEOUT_MS: u64 = 5_000;
/// The pause between two attempts of a `check` when the file does not say.
pub const DEFAULT_CHECK_INTERVAL_MS: u64 = 1_000;
/// The status an HTTP check expects when the file does not say.
pub const DEFAULT_HTTP_STATUS: u16 = 200;
/// Derived step names are cut here: they label report lines, not scripts.
const DERIVED_NAME_MAX_CHARS: usize = 60;

const ACTIONS: [&str; 4] = ["run", "file", "remove", "check"];

/// A broken rule, naming the key at fault when there is one.
///
/// Rules run inside serde visitors, whose errors are plain strings; the field
/// travels in the text as `field '<name>': ` and `split_rule_field` takes it
/// back out, so the two must stay in step.
#[derive(Debug)]
pub(crate) struct RuleError {
    field: Option<&'static str>,
    message: String,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = self.field {
            write!(f, "field '{field}': ")?;
        }
        f.write_str(&self.message)
    }
}

/// Splits `field '<name>': <message>` into its parts.
pub(crate) fn split_rule_field(message: &str) -> (Option<&str>, &str) {
    message
        .strip_prefix("field '")
        .and_then(|rest| rest.split_once("': "))
        .map_or((None, message), |(field, rest)| (Some(field), rest))
}

fn rule(field: Option<&'static str>, message: impl Into<String>) -> RuleError {
    RuleError {
        field,
        message: message.into(),
    }
}

/// Exactly one action among `keys`, and every other key one that goes
/// with it.
fn check_keys(keys: &[&'static str]) -> Result<(), RuleError> {
    let mut actions = keys.iter().filter(|key| ACTIONS.contains(key));
    let Some(&action) = actions.next() else {
        return Err(rule(
            None,
            "a step needs one action: `run`, `file`, `remove` or `check`",
        ));
    };
    if let Some(&second) = actions.next() {
        return Err(rule(
            Some(second),
            format!("a step has exactly one action, and this one already has `{action}`"),
        ));
    }
    for &key in keys {
        let allowed_with: &[&str] = match key {
            "undo" | "env" | "cwd" => &["run"],
            "timeout" => &["run", "check"],
            "content" | "mode" => &["file"],
            "retries" | "interval" => &["check"],
            _ => continue,
        };
        if !allowed_with.contains(&action) {
            let with = allowed_with
                .iter()
                .map(|a| format!("`{a}`"))
                .collect::<Vec<_>>()
                .join(" or ");
            return Err(rule(
                Some(key),
                format!("only allowed in a {with} step, not in a `{action}` step"),
            ));
        }
    }
    Ok(())
}

pub(crate) fn build_step(raw: RawStep) -> Result<Step, RuleError> {
    check_keys(&present_keys(&raw))?;
    let (derived, action) = if let Some(command) = raw.run {
        let derived = format!("run: {}", command.describe());
        let action = Action::Run {
            command: command.0,
            undo: raw.undo.map(|undo| undo.0),
            env: raw
                .env
                .unwrap_or_default()
                .into_iter()
                .map(|(name, value)| (name.0, value.0))
                .collect(),
            cwd: raw.cwd.map(|cwd| cwd.0),
            timeout_ms: ms_or(raw.timeout, DEFAULT_RUN_TIMEOUT_MS),
        };
        (derived, action)
    } else if let Some(path) = raw.file {
        let Some(content) = raw.content else {
            return Err(rule(
                Some("content"),
                "a `file` step needs `content` (write content: \"\" for an empty file)",
            ));
        };
        let action = Action::File {
            path: path.0.clone(),
            content: content.0,
            mode: raw.mode.map(|mode| mode.0),
        };
        (format!("file {}", path.0), action)
    } else if let Some(path) = raw.remove {
        (
            format!("remove {}", path.0),
            Action::Remove { path: path.0 },
        )
    } else if let Some(check) = raw.check {
        let derived = match &check.0 {
            Probe::Command(command) => {
                format!("check: {}", CommandSpec(command.clone()).describe())
            }
            Probe::Http { url, .. } => format!("check {url}"),
        };
        let action = Action::Check {
            probe: check.0,
            retries: raw.retries.unwrap_or(0),
            interval_ms: ms_or(raw.interval, DEFAULT_CHECK_INTERVAL_MS),
            timeout_ms: ms_or(raw.timeout, DEFAULT_CHECK_TIMEOUT_MS),
        };
        (derived, action)
    } else {
        // Unreachable: exactly one action was found above.
        return Err(rule(None, "a step needs one action"));
    };
    let name = raw.name.map_or_else(|| shorten(&derived), |name| name.0);
    Ok(Step { name, action })
}

pub(crate) fn build_probe(raw: RawProbe) -> Result<Probe, RuleError> {
    match (raw.command, raw.http) {
        (Some(_), Some(_)) => Err(rule(
            Some("http"),
            "a check has exactly one of `command` or `http`, and this one already has `command`",
        )),
        (None, None) => Err(rule(None, "a check needs `command` or `http`")),
        (Some(_), None) if raw.status.is_some() => Err(rule(
            Some("status"),
            "only allowed with `http`, not with `command`",
        )),
        (Some(command), None) => Ok(Probe::Command(command.0)),
        (None, Some(url)) => Ok(Probe::Http {
            url: url.0,
            status: raw.status.map_or(DEFAULT_HTTP_STATUS, |status| status.0),
        }),
    }
}

/// The keys the step was written with, in the order of `RawStep`.
fn present_keys(raw: &RawStep) -> Vec<&'static str> {
    [
        ("run", raw.run.is_some()),
        ("file", raw.file.is_some()),
        ("remove", raw.remove.is_some()),
        ("check", raw.check.is_some()),
        ("undo", raw.undo.is_some()),
        ("env", raw.env.is_some()),
        ("cwd", raw.cwd.is_some()),
        ("timeout", raw.timeout.is_some()),
        ("content", raw.content.is_some()),
        ("mode", raw.mode.is_some()),
        ("retries", raw.retries.is_some()),
        ("interval", raw.interval.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, present)| present.then_some(key))
    .collect()
}

fn ms_or(duration: Option<DurationMs>, default_ms: u64) -> u64 {
    duration.map_or(default_ms, |d| d.0)
}

/// First line only, at most `DERIVED_NAME_MAX_CHARS` characters.
fn shorten(derived: &str) -> String {
    let first_line = derived.lines().next().unwrap_or_default().trim_end();
    let more = first_line.len() < derived.trim_end().len();
    let mut name: String = first_line.chars().take(DERIVED_NAME_MAX_CHARS).collect();
    if more || name.len() < first_line.len() {
        name.push('…');
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_fields_survive_the_round_trip_through_text() {
        let text = rule(Some("mode"), "bad: really").to_string();
        assert_eq!(split_rule_field(&text), (Some("mode"), "bad: really"));
        assert_eq!(split_rule_field("plain: text"), (None, "plain: text"));
    }

    #[test]
    fn derived_names_keep_the_first_line_and_stay_short() {
        assert_eq!(shorten("run: echo hi"), "run: echo hi");
        assert_eq!(shorten("run: set -e\necho hi\n"), "run: set -e…");
        let long = format!("run: {}", "x".repeat(100));
        let name = shorten(&long);
        assert_eq!(name.chars().count(), DERIVED_NAME_MAX_CHARS + 1);
        assert!(name.ends_with('…'));
    }
}
