//! What the CLI prints of bytes it did not write itself (a host's labels,
//! an app's log lines, a change's title, an error the tower relays) made
//! harmless for a terminal: a control character is shown, never obeyed,
//! so a host cannot retitle the terminal, erase a line, move the cursor,
//! forge a line or turn text around.
//!
//! Shown like `git` and `systemctl` do: `\n`, `\r`, `\t` by name; other C0
//! controls, ESC and DEL as `\xNN` (`\x1b`); C1 controls, the bidirectional
//! marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F,
//! U+202A–U+202E, U+2066–U+2069) and the line and paragraph separators
//! (U+2028, U+2029) as `\u{NNNN}` (`\u{202e}`). A backslash is left as it
//! is: the escaped form is for eyes, `--json` and `logs --raw` are exact.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is never printed as is, wherever it appears.
fn hostile(c: char) -> bool {
    matches!(c,
        '\0'..='\x08' | '\x0b'..='\x1f' | '\x7f' | '\u{80}'..='\u{9f}'
        | '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

fn push_escaped(out: &mut String, c: char) {
    // Writing to a String cannot fail.
    let _ = match c {
        '\n' => write!(out, "\\n"),
        '\r' => write!(out, "\\r"),
        '\t' => write!(out, "\\t"),
        '\0'..='\x1f' | '\x7f' => write!(out, "\\x{:02x}", c as u32),
        _ => write!(out, "\\u{{{:x}}}", c as u32),
    };
}

fn escape_if(s: &str, bad: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !s.chars().any(&bad) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if bad(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// Text that may span lines (a log line, an error, a step's output):
/// newlines and tabs kept, every other control shown.
pub fn text(s: &str) -> Cow<'_, str> {
    escape_if(s, hostile)
}

/// One field of one line (a table cell, a label, a title): newlines and
/// tabs shown too, so a value cannot forge a line or a column.
pub fn field(s: &str) -> Cow<'_, str> {
    escape_if(s, |c| matches!(c, '\n' | '\t') || hostile(c))
}

/// A serialized JSON document made as safe for a terminal as text, still
/// the same JSON: serde_json escapes C0 controls already; DEL, C1 and the
/// bidirectional controls, which it leaves raw, become `\uNNNN` (they can
/// only be inside strings: JSON's own syntax is ASCII).
pub fn json(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hostile) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if hostile(c) {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::{field, json, text};

    /// What the issue's probes printed: a retitle, a line erase, a carriage
    /// return over a forged line, a right-to-left override.
    const ATTACK: &str = "a\x1b]0;owned\x07b\x1b[2K\rstep 1 succeeded\u{202e}txt.exe";

    #[test]
    fn controls_escape_and_bidi_overrides_are_shown_not_obeyed() {
        assert_eq!(
            text(ATTACK),
            "a\\x1b]0;owned\\x07b\\x1b[2K\\rstep 1 succeeded\\u{202e}txt.exe"
        );
        for s in [text(ATTACK), field(ATTACK)] {
            assert!(!s.chars().any(|c| c.is_control()), "{s:?}");
        }
        assert_eq!(text("\x7f\u{85}\u{9b}"), "\\x7f\\u{85}\\u{9b}");
        for c in [
            '\u{61c}', '\u{200e}', '\u{200f}', '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}',
            '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{2028}', '\u{2029}',
        ] {
            assert_eq!(text(&c.to_string()), format!("\\u{{{:x}}}", c as u32));
        }
    }

    #[test]
    fn text_keeps_lines_and_tabs_a_field_shows_them() {
        assert_eq!(text("one\n\ttwo"), "one\n\ttwo");
        assert_eq!(field("role=web\nweb-9  online"), "role=web\\nweb-9  online");
        assert_eq!(field("a\tb"), "a\\tb");
    }

    #[test]
    fn ordinary_text_is_untouched_and_not_copied() {
        for s in ["web-1", "déploiement ✓ 日本", "C:\\path \\x1b", ""] {
            assert!(matches!(text(s), std::borrow::Cow::Borrowed(_)), "{s}");
            assert!(matches!(field(s), std::borrow::Cow::Borrowed(_)), "{s}");
        }
    }

    #[test]
    fn escaping_twice_changes_nothing_more() {
        let once = field(ATTACK).into_owned();
        assert_eq!(field(&once), once);
        assert_eq!(text(&once), once);
    }

    #[test]
    fn json_stays_the_same_json_without_raw_controls() -> Result<(), serde_json::Error> {
        let v = serde_json::json!({ "text": ATTACK, "del": "\x7f\u{9b}" });
        let s = serde_json::to_string(&v)?;
        assert!(s.contains("\\u001b]0;owned\\u0007"), "{s}");
        let safe = json(&s);
        assert!(!safe.chars().any(|c| c.is_control()), "{safe}");
        assert!(
            safe.contains("\\u202e") && safe.contains("\\u007f\\u009b"),
            "{safe}"
        );
        let back: serde_json::Value = serde_json::from_str(&safe)?;
        assert_eq!(back, v);
        Ok(())
    }
}
