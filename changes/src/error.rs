//! The one error type of the crate. Every message about a change file says
//! where to look: the file, the line when the YAML parser knows it, the step
//! (1-based, with its name) and the field.

use std::fmt;

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{file}: cannot read the change file: {source}")]
    Read {
        file: String,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{file}: the change file is {len} bytes, more than the {max} a change request may hold"
    )]
    TooLarge {
        file: String,
        len: usize,
        max: usize,
    },

    /// Not YAML at all, or YAML of the wrong shape at the top level.
    #[error("{}: invalid YAML: {message}", Place(file, *at))]
    Syntax {
        file: String,
        at: Option<Location>,
        message: String,
    },

    /// Well-formed YAML that breaks a rule of the change-file format.
    #[error("{0}")]
    Invalid(Box<InvalidChange>),

    #[error("invalid host id {id:?}: {reason}")]
    HostId { id: String, reason: String },

    #[error("invalid selector {selector:?}: {reason}")]
    Selector { selector: String, reason: String },

    #[error("invalid scope {scope:?}: {reason}")]
    Scope { scope: String, reason: String },
}

/// Where a change file breaks a rule, and which rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidChange {
    pub file: String,
    pub at: Option<Location>,
    pub step: Option<StepRef>,
    /// The key at fault, as a path within the step (`mode`, `check.http`,
    /// `env.PORT`) or the file (`title`), when there is one.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for InvalidChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}{}",
            Place(&self.file, self.at),
            Subject(self.step.as_ref(), self.field.as_deref()),
            self.message
        )
    }
}

/// A position in the YAML text, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
}

/// Which step an error is about: its 1-based index as operators count, and
/// its `name` when the file gives one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRef {
    pub index: usize,
    pub name: Option<String>,
}

impl fmt::Display for StepRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}", self.index)?;
        if let Some(name) = &self.name {
            write!(f, " ({name:?})")?;
        }
        Ok(())
    }
}

/// `file:line:col`, the form editors and terminals turn into links.
struct Place<'a>(&'a str, Option<Location>);

impl fmt::Display for Place<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)?;
        if let Some(at) = self.1 {
            write!(f, ":{}:{}", at.line, at.column)?;
        }
        Ok(())
    }
}

/// `step 2 ("write config"): field 'mode': `, each part only when known.
struct Subject<'a>(Option<&'a StepRef>, Option<&'a str>);

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(step) = self.0 {
            write!(f, "{step}: ")?;
        }
        if let Some(field) = self.1 {
            write!(f, "field '{field}': ")?;
        }
        Ok(())
    }
}
