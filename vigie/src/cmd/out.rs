//! Where the operator's commands print: stdout, one line at a time, as a
//! table with a header row and aligned columns, or one JSON object a line.
//! Everything goes through `escape.rs` on its way: a line's controls are
//! shown, a table cell's newlines and tabs too, JSON keeps no raw control;
//! only [`raw`] (`vigie logs --raw`) writes bytes as they came.
//! A write error (a reader that went away: `vigie status | head`) comes
//! back as an `io::Error`, which `main` turns into a quiet exit.

use std::io::Write;

use super::escape;

/// Whether the command prints text or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

impl Format {
    pub fn of(json: bool) -> Self {
        if json {
            Self::Json
        } else {
            Self::Text
        }
    }
}

/// One line on stdout, its controls shown (newlines and tabs kept: a
/// single-line value inside it is the caller's to pass through
/// [`escape::field`]).
pub fn line(text: &str) -> std::io::Result<()> {
    raw(&escape::text(text))
}

/// One line on stdout exactly as given: for `logs --raw` into a file or a
/// pipe, and for lines already made safe.
pub fn raw(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// A value as one line of JSON, with no raw control in it (see
/// [`escape::json`]).
pub fn json_line<T: serde::Serialize>(v: &T) -> serde_json::Result<String> {
    let s = serde_json::to_string(v)?;
    Ok(escape::json(&s).into_owned())
}

/// One JSON object on one line.
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    raw(&json_line(v)?)?;
    Ok(())
}

/// `println!` for text holding others' bytes: escaped like [`line`]'s.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", $crate::cmd::escape::text(&format!($($arg)*)))
    };
}
pub(crate) use say;

/// `say!` for output a reader may cut short (`| head`): a closed stdout
/// comes back as an `io::Error` through `?` (a quiet exit), never a panic.
macro_rules! sayio {
    ($($arg:tt)*) => {
        $crate::cmd::out::line(&format!($($arg)*))?
    };
}
pub(crate) use sayio;

/// `eprintln!`, escaped the same way.
macro_rules! esay {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::cmd::escape::text(&format!($($arg)*)))
    };
}
pub(crate) use esay;

/// An error or note on stderr, its controls shown.
pub fn warn(text: &str) {
    eprintln!("{}", escape::text(text));
}

/// Whether an error is stdout's reader having gone away.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Rows under a header, each column as wide as its widest cell; the last
/// column is not padded (no trailing blanks).
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// A row; each cell is escaped as one field, so a value cannot forge
    /// a row or shift a column.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| match escape::field(&c) {
                    std::borrow::Cow::Borrowed(_) => c,
                    std::borrow::Cow::Owned(e) => e,
                })
                .collect(),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table's lines, header first.
    pub fn lines(&self) -> Vec<String> {
        let cols = self.header.len();
        let mut width = vec![0usize; cols];
        for r in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in r.iter().enumerate().take(cols) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        std::iter::once(&self.header)
            .chain(&self.rows)
            .map(|r| {
                let mut s = String::new();
                for (i, c) in r.iter().enumerate().take(cols) {
                    if i + 1 == cols {
                        s.push_str(c);
                    } else {
                        let pad = width[i] - c.chars().count();
                        s.push_str(c);
                        s.extend(std::iter::repeat_n(' ', pad + 2));
                    }
                }
                s.trim_end().to_owned()
            })
            .collect()
    }

    pub fn print(&self) -> std::io::Result<()> {
        for l in self.lines() {
            raw(&l)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Table;

    #[test]
    fn columns_align_under_a_header_without_trailing_blanks() {
        let mut t = Table::new(&["ID", "HOST", "TITLE"]);
        t.row(vec!["c1".into(), "web-10".into(), "deploy".into()]);
        t.row(vec!["c22".into(), "db".into(), String::new()]);
        assert_eq!(
            t.lines(),
            ["ID   HOST    TITLE", "c1   web-10  deploy", "c22  db",]
        );
    }

    #[test]
    fn a_cell_cannot_forge_a_row_or_send_controls() {
        let mut t = Table::new(&["HOST", "LABELS"]);
        t.row(vec![
            "web-1".into(),
            "role=web\nweb-2  role=db\x1b[2K\r".into(),
        ]);
        t.row(vec!["web-3".into(), "a=\x1b]0;t\x07\u{202e}".into()]);
        let lines = t.lines();
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(
            lines.iter().all(|l| !l.chars().any(char::is_control)),
            "{lines:?}"
        );
        assert_eq!(lines[1], "web-1  role=web\\nweb-2  role=db\\x1b[2K\\r");
        assert_eq!(lines[2], "web-3  a=\\x1b]0;t\\x07\\u{202e}");
    }
}
