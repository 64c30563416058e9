//! A change request's program: steps, their actions, and what a step
//! reports once it ran. Produced by `vigie-changes` from a YAML file,
//! carried in orders, executed by drivers.

use serde::{Deserialize, Serialize};

pub type Bytes = Vec<u8>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeSpec {
    pub title: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// A human name: the YAML `name`, or one derived from the action.
    pub name: String,
    pub action: Action,
}

/// A command: an argv run directly, or a line given to `/bin/sh -c`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Argv(Vec<String>),
    Shell(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Probe {
    /// Healthy when the command exits 0.
    Command(Command),
    /// Healthy when a GET of `url` answers `status`.
    Http { url: String, status: u16 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// Runs `command` (in `cwd`, relative to the host root); `undo` runs on
    /// rollback. Killed, with its whole process group, after `timeout_ms`.
    Run {
        command: Command,
        undo: Option<Command>,
        env: Vec<(String, String)>,
        cwd: Option<String>,
        timeout_ms: u64,
    },
    /// Writes a file; undo restores the previous content, or its absence.
    File {
        path: String,
        #[serde(with = "serde_bytes")]
        content: Bytes,
        mode: Option<u32>,
    },
    /// Removes a file or a directory tree; undo puts it back.
    Remove { path: String },
    /// A health check, tried up to `retries + 1` times, `interval_ms` apart,
    /// each attempt bounded by `timeout_ms`. Nothing to undo.
    Check {
        probe: Probe,
        retries: u32,
        interval_ms: u64,
        timeout_ms: u64,
    },
    /// An env file: `content`, then one `VAR='value'` line per secret,
    /// each value sealed by the tower for this host's agent key. The plug
    /// opens them and writes the file like `File` (mode 0600 at most); a
    /// driver never sees this variant, and its result never says what the
    /// file holds (no digests).
    SecretFile {
        path: String,
        /// The environment whose secrets these are (`app/environment`).
        environment: String,
        #[serde(with = "serde_bytes")]
        content: Bytes,
        secrets: Vec<crate::secrets::SealedVar>,
    },
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Run { .. } => "run",
            Action::File { .. } => "file",
            Action::Remove { .. } => "remove",
            Action::Check { .. } => "check",
            Action::SecretFile { .. } => "secret_file",
        }
    }
}

/// What a step (or its undo) did: enough for the audit to say what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    pub ok: bool,
    /// One line for humans: "wrote 120 bytes", "exit 3", "timed out after 5s".
    pub summary: String,
    pub exit_code: Option<i32>,
    /// The last few KiB of output.
    pub stdout_tail: String,
    pub stderr_tail: String,
    /// sha256 of the file before and after (`None`: absent), file steps only.
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub duration_ms: u64,
}

impl StepResult {
    pub fn failed(summary: impl Into<String>) -> Self {
        Self {
            ok: false,
            summary: summary.into(),
            ..Self::default()
        }
    }

    pub fn ok(summary: impl Into<String>) -> Self {
        Self {
            ok: true,
            summary: summary.into(),
            ..Self::default()
        }
    }

    /// At most `max` lines of the error output that say what went wrong,
    /// as the host wrote them (a reader escapes them): from the first line
    /// naming an error (`ERROR:`, `error`, `fatal`, `panic`), else from
    /// the last line; only lines with a letter or a digit, so psql's
    /// `LINE 1: …` comes after its `ERROR:`, its lone `^` never alone.
    pub fn error_lines(&self, max: usize) -> Vec<&str> {
        let said: Vec<&str> = self
            .stderr_tail
            .lines()
            .map(str::trim)
            .filter(|l| l.chars().any(char::is_alphanumeric))
            .collect();
        let names_error = |l: &&str| {
            let l = l.to_ascii_lowercase();
            ["error", "fatal", "panic"].iter().any(|w| l.contains(w))
        };
        let from = said
            .iter()
            .position(names_error)
            .unwrap_or(said.len().saturating_sub(1));
        said.into_iter().skip(from).take(max).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::StepResult;

    fn failed(stderr: &str) -> StepResult {
        StepResult {
            stderr_tail: stderr.into(),
            ..StepResult::failed("exit 2")
        }
    }

    /// Issue 19: a failed SQL migration reads as psql's error, not as the
    /// caret that ends its output; other output as its last line.
    #[test]
    fn the_lines_that_say_the_error_come_first() {
        let psql = failed(
            "NOTICE:  table created\n\
             psql:migrations/002_notes.sql:3: ERROR:  column \"missing_column\" does not exist\n\
             LINE 1: INSERT INTO notes (missing_column) VALUES ('x');\n\
             \x20                          ^\n",
        );
        assert_eq!(
            psql.error_lines(2),
            [
                "psql:migrations/002_notes.sql:3: ERROR:  column \"missing_column\" does not exist",
                "LINE 1: INSERT INTO notes (missing_column) VALUES ('x');"
            ]
        );
        assert_eq!(psql.error_lines(1).len(), 1);
        let plain = failed("starting\nno such file: app.py\n\n");
        assert_eq!(plain.error_lines(3), ["no such file: app.py"]);
        assert!(failed("").error_lines(3).is_empty());
        assert!(failed("   ^\n").error_lines(3).is_empty());
    }
}
