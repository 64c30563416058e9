//! Where the operator's commands print: stdout, one line at a time, as a
//! table with a header row and aligned columns, or one JSON object a line.
//! A write error (a reader that went away: `vigie status | head`) comes
//! back as an `io::Error`, which `main` turns into a quiet exit.

use std::io::Write;

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

/// One line on stdout.
pub fn line(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}

/// One JSON object on one line.
pub fn json<T: serde::Serialize>(v: &T) -> anyhow::Result<()> {
    line(&serde_json::to_string(v)?)?;
    Ok(())
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

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
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
            line(&l)?;
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
}
