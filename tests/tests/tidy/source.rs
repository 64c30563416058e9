//! Source text as the architecture checks read it: comments, string and
//! character literals blanked (newlines kept, so line numbers hold), and
//! test code (`#[cfg(test)]` items, test files) left out.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, sorted (stable messages).
pub fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file only tests compile, by the project's naming: `tests.rs`,
/// `*_tests.rs`, `test_*.rs`, or anything under a `tests/` folder of `src`.
pub fn is_test_file(rel: &Path) -> bool {
    let stem = rel.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    stem == "tests"
        || stem.ends_with("_tests")
        || stem.starts_with("test_")
        || rel
            .parent()
            .is_some_and(|d| d.components().any(|c| c.as_os_str() == "tests"))
}

/// `text` with comments and literals' contents replaced by spaces.
pub fn blank(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let skip = match (b[i], b.get(i + 1).copied()) {
            ('/', Some('/')) => line_comment(&b, i),
            ('/', Some('*')) => block_comment(&b, i),
            ('"', _) => string(&b, i + 1),
            ('r', Some('"' | '#')) if !ident_before(&b, i) => raw_string(&b, i + 1),
            ('\'', _) => char_literal(&b, i),
            _ => 0,
        };
        if skip == 0 {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let end = (i + skip).min(b.len());
        for c in &b[i..end] {
            out.push(if *c == '\n' { '\n' } else { ' ' });
        }
        i = end;
    }
    out
}

fn ident_before(b: &[char], i: usize) -> bool {
    i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_')
}

fn line_comment(b: &[char], i: usize) -> usize {
    b[i..]
        .iter()
        .position(|c| *c == '\n')
        .unwrap_or(b.len() - i)
}

fn block_comment(b: &[char], i: usize) -> usize {
    let mut depth = 0;
    let mut j = i;
    while j + 1 < b.len() {
        match (b[j], b[j + 1]) {
            ('/', '*') => {
                depth += 1;
                j += 2;
            }
            ('*', '/') => {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return j - i;
                }
            }
            _ => j += 1,
        }
    }
    b.len() - i
}

/// From the opening quote at `open - 1`: the literal's length, both
/// quotes included (escapes honoured).
fn string(b: &[char], open: usize) -> usize {
    let mut j = open;
    while j < b.len() {
        match b[j] {
            '\\' => j += 2,
            '"' => return j + 2 - open,
            _ => j += 1,
        }
    }
    b.len() + 1 - open
}

fn raw_string(b: &[char], from: usize) -> usize {
    let hashes = b[from..].iter().take_while(|c| **c == '#').count();
    if b.get(from + hashes) != Some(&'"') {
        return 0;
    }
    let body = from + hashes + 1;
    let mut j = body;
    while j < b.len() {
        if b[j] == '"'
            && b[j + 1..]
                .iter()
                .take(hashes)
                .filter(|c| **c == '#')
                .count()
                == hashes
        {
            return j + 1 + hashes - (from - 1);
        }
        j += 1;
    }
    b.len() - (from - 1)
}

/// A character literal (`'a'`, `'\n'`, `'{'`), not a lifetime (`'a`).
fn char_literal(b: &[char], i: usize) -> usize {
    match (b.get(i + 1), b.get(i + 2)) {
        (Some('\\'), _) => b
            .get(i + 3..)
            .and_then(|rest| rest.iter().position(|c| *c == '\''))
            .map_or(0, |p| p + 4),
        (Some(_), Some('\'')) => 3,
        _ => 0,
    }
}

/// Blanked `text` with every `#[cfg(test)]` item blanked too: the attribute
/// through the item's `;` or its closing brace.
pub fn production(text: &str) -> String {
    let code = blank(text);
    let mut out: Vec<char> = code.chars().collect();
    let pat: Vec<char> = "#[cfg(test)]".chars().collect();
    let mut i = 0;
    while i + pat.len() <= out.len() {
        if out[i..i + pat.len()] != pat[..] {
            i += 1;
            continue;
        }
        let end = item_end(&out, i + pat.len());
        for c in &mut out[i..end] {
            if *c != '\n' {
                *c = ' ';
            }
        }
        i = end;
    }
    out.into_iter().collect()
}

/// Where the item starting at `from` ends: after its `;` when no brace
/// opens first, else after the brace that closes the first one.
pub fn item_end(b: &[char], from: usize) -> usize {
    let mut depth = 0usize;
    // `[u8; 32]` in a signature is no item's end.
    let mut nest = 0usize;
    for (j, c) in b.iter().enumerate().skip(from) {
        match c {
            '(' | '[' => nest += 1,
            ')' | ']' => nest = nest.saturating_sub(1),
            ';' if depth == 0 && nest == 0 => return j + 1,
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    b.len()
}

/// The line (from 1) of char index `i`.
pub fn line_of(b: &[char], i: usize) -> usize {
    b[..i].iter().filter(|c| **c == '\n').count() + 1
}
