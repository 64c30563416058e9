//! The scalar values of a change file. Each one is checked inside its serde
//! visitor, while the parser still knows where the value sits, so its error
//! carries the value's own line and column.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use vigie_wire::change::Command;

use crate::duration::parse_duration_ms;

/// Reads any scalar as the text written in the file, then checks it. Asking
/// for a string gives the text as written, so `mode: 0644` stays "0644"
/// rather than becoming the number 644, and `[sleep, 5]` gives "5".
/// Shared with the other YAML files of the tower (the deployer's).
pub fn checked_text<'de, D, T>(
    deserializer: D,
    expecting: &'static str,
    check: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct TextVisitor<T> {
        expecting: &'static str,
        check: fn(&str) -> Result<T, String>,
    }

    impl<T> Visitor<'_> for TextVisitor<T> {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }

        fn visit_str<E: de::Error>(self, value: &str) -> Result<T, E> {
            (self.check)(value).map_err(E::custom)
        }
    }

    deserializer.deserialize_str(TextVisitor { expecting, check })
}

fn no_nul(text: &str) -> Result<(), String> {
    if text.contains('\0') {
        return Err(format!("{text:?} contains a NUL byte"));
    }
    Ok(())
}

/// A piece of text passed to a process (an argv word, an env value): any
/// scalar, without NUL, which no process could receive.
#[derive(Debug)]
pub(crate) struct Word(pub String);

impl<'de> Deserialize<'de> for Word {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a string", |text| {
            no_nul(text)?;
            Ok(Word(text.to_string()))
        })
    }
}

/// A title or a step name: something to show, so not blank.
#[derive(Debug)]
pub(crate) struct Label(pub String);

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a non-empty string", |text| {
            let text = text.trim();
            if text.is_empty() {
                return Err("must not be empty".into());
            }
            Ok(Label(text.to_string()))
        })
    }
}

/// A file's content, written as is; may be empty.
#[derive(Debug)]
pub(crate) struct Content(pub Vec<u8>);

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "the file's content as a string", |text| {
            Ok(Content(text.as_bytes().to_vec()))
        })
    }
}

/// A path on the host, resolved by the driver under the host root. `..` is
/// refused so that no step can reach outside that root.
#[derive(Debug)]
pub(crate) struct HostPath(pub String);

impl<'de> Deserialize<'de> for HostPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a path", |text| {
            if text.is_empty() {
                return Err("the path is empty".into());
            }
            no_nul(text)?;
            if text.split('/').any(|part| part == "..") {
                return Err(format!("{text:?} has a '..' component"));
            }
            Ok(HostPath(text.to_string()))
        })
    }
}

/// A duration in milliseconds, written `500ms`, `30s`, `2m`, `1h`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DurationMs(pub u64);

impl<'de> Deserialize<'de> for DurationMs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a duration such as 30s", |text| {
            parse_duration_ms(text).map(DurationMs)
        })
    }
}

/// Permission bits. Always read as octal digits, quoted or not, because
/// that is how operators think of modes: `mode: 644`, `mode: 0644` and
/// `mode: "0o644"` all mean rw-r--r--.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mode(pub u32);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "an octal mode such as \"0644\"", |text| {
            let digits = text.strip_prefix("0o").unwrap_or(text);
            match u32::from_str_radix(digits, 8) {
                Ok(mode) if mode <= 0o7777 && !digits.starts_with('+') => Ok(Mode(mode)),
                _ => Err(format!("{text:?} is not an octal mode (0-7777)")),
            }
        })
    }
}

/// The URL of an HTTP health check. Only plain `http://`: checks target
/// services on the host itself, and the agent carries no TLS stack.
#[derive(Debug)]
pub(crate) struct HttpUrl(pub String);

impl<'de> Deserialize<'de> for HttpUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "an http:// URL", |text| {
            let rest = text.strip_prefix("http://").unwrap_or_default();
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if host.is_empty() {
                return Err(format!("{text:?} is not an http:// URL with a host"));
            }
            if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!("{text:?} contains spaces or control characters"));
            }
            Ok(HttpUrl(text.to_string()))
        })
    }
}

/// The HTTP status a check expects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Status(pub u16);

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "an HTTP status such as 200", |text| {
            match text.parse::<u16>() {
                Ok(code) if (100..=599).contains(&code) => Ok(Status(code)),
                _ => Err(format!("{text:?} is not an HTTP status (100-599)")),
            }
        })
    }
}

/// The name of an environment variable: not empty, no `=` (it would end the
/// name) and no NUL.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EnvName(pub String);

impl<'de> Deserialize<'de> for EnvName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a variable name", |text| {
            if text.is_empty() || text.contains(['=', '\0']) {
                return Err(format!(
                    "{text:?} is not a variable name (non-empty, without '=')"
                ));
            }
            Ok(EnvName(text.to_string()))
        })
    }
}

/// A command: a string is a line for `/bin/sh -c`, a list is an argv.
#[derive(Debug)]
pub(crate) struct CommandSpec(pub Command);

impl CommandSpec {
    /// A one-line description for derived step names.
    pub fn describe(&self) -> String {
        match &self.0 {
            Command::Shell(line) => line.trim().to_string(),
            Command::Argv(argv) => argv.join(" "),
        }
    }
}

impl<'de> Deserialize<'de> for CommandSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CommandVisitor)
    }
}

struct CommandVisitor;

impl<'de> Visitor<'de> for CommandVisitor {
    type Value = CommandSpec;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a shell line or an argv list")
    }

    fn visit_str<E: de::Error>(self, line: &str) -> Result<CommandSpec, E> {
        if line.trim().is_empty() {
            return Err(E::custom("the shell line is empty"));
        }
        no_nul(line).map_err(E::custom)?;
        Ok(CommandSpec(Command::Shell(line.to_string())))
    }

    // `run: true` is the shell builtin, not a YAML boolean, to whoever wrote it.
    fn visit_bool<E: de::Error>(self, value: bool) -> Result<CommandSpec, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<CommandSpec, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<CommandSpec, E> {
        self.visit_str(&value.to_string())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CommandSpec, A::Error> {
        let mut argv = Vec::new();
        while let Some(Word(word)) = seq.next_element()? {
            argv.push(word);
        }
        match argv.first() {
            None => Err(de::Error::custom("the argv list is empty")),
            Some(program) if program.is_empty() => {
                Err(de::Error::custom("the program (argv[0]) is empty"))
            }
            Some(_) => Ok(CommandSpec(Command::Argv(argv))),
        }
    }
}
