//! The catalog's errors. An import gathers every [`RowError`] of a file
//! before it answers, so an operator fixes a file in one pass.

use std::fmt;

/// Most errors listed (the count says how many there were).
pub const MAX_ERRORS: usize = 1_000;

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
    /// Every problem of the file, in file order: at most
    /// [`MAX_ERRORS`] of them listed, `total` counts all.
    #[error("{file}: {}:\n{}", counted(*total, errors.len()), list(errors))]
    Rows {
        file: String,
        errors: Vec<RowError>,
        total: usize,
    },
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

impl CatalogError {
    /// Every problem of a file, in line order; the first
    /// [`MAX_ERRORS`] are kept to be shown, all are counted.
    pub fn rows(file: &str, mut errors: Vec<RowError>) -> Self {
        errors.sort_by_key(|e| e.line);
        let total = errors.len();
        errors.truncate(MAX_ERRORS);
        CatalogError::Rows {
            file: file.to_owned(),
            errors,
            total,
        }
    }
}

/// "3 error(s)", or "4,800 errors, the first 1,000 shown".
pub fn counted(total: usize, shown: usize) -> String {
    if shown < total {
        format!(
            "{} errors, the first {} shown",
            thousands(total),
            thousands(shown)
        )
    } else {
        format!("{} error(s)", thousands(total))
    }
}

/// 4800 → "4,800".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn list(errors: &[RowError]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    lines.join("\n")
}
