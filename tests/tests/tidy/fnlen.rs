//! Function lengths: from the line of `fn` to the line of its closing
//! brace, over blanked production text (so test code, comments and
//! literals never count).

use super::source::{item_end, line_of};

/// Every function with a body in `code`: its name and length in lines.
pub fn lengths(code: &str) -> Vec<(String, usize)> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 3 < b.len() {
        let word = b[i] == 'f' && b[i + 1] == 'n' && b[i + 2].is_whitespace();
        let alone = i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_');
        if !(word && alone) {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        while j < b.len() && b[j].is_whitespace() {
            j += 1;
        }
        let name: String = b[j..]
            .iter()
            .take_while(|c| c.is_alphanumeric() || **c == '_')
            .collect();
        let end = item_end(&b, j);
        let has_body = end > 0 && b[end - 1] == '}';
        if !name.is_empty() && has_body {
            out.push((name, line_of(&b, end - 1) - line_of(&b, i) + 1));
        }
        i = j;
    }
    out
}
