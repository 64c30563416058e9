//! The catalog's errors. An import gathers every [`RowError`] of a file
//! before it answers, so an operator fixes a file in one pass.

use std::fmt;

/// One problem in an import file: where (line, column) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based line of the file where the record starts.
    pub line: u64,
    /// The column's header name, when the problem is one field's.
    pub column: Option<String>,
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.column {
            Some(c) => write!(f, "line {}, column '{c}': {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Every problem of the file, in file order.
    #[error("{file}: {} error(s):\n{}", errors.len(), list(errors))]
    Rows { file: String, errors: Vec<RowError> },
    #[error("{file}: {message}")]
    File { file: String, message: String },
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
}

fn list(errors: &[RowError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    lines.join("\n")
}
