//! A public key on the command line. Z85 text holds `&`, `(`, `{`, `$` and
//! may start with `-`, which shells and flag parsers trip on, so a key is
//! also taken from a file (`@agent.pub`, as `vigie keys gen` and an agent
//! write it) or as 64 hex digits. Whatever the spelling, the value is
//! checked and handed on as Z85.

use std::path::Path;

/// Parses `--key`: `@FILE`, 64 hex digits, or 40 characters of Z85.
pub fn parse_key(text: &str) -> Result<String, String> {
    if let Some(path) = text.strip_prefix('@') {
        // '@' is also a Z85 digit: a key that starts with it and names no
        // file is a key.
        if Path::new(path).exists() || from_text(text).is_none() {
            let body =
                std::fs::read_to_string(path).map_err(|e| format!("key file {path}: {e}"))?;
            let first = body.lines().map(str::trim).find(|l| !l.is_empty());
            return first.and_then(from_text).ok_or_else(|| {
                format!(
                    "key file {path}: not a public key (40 characters of Z85, or 64 hex digits)"
                )
            });
        }
    }
    from_text(text).ok_or_else(|| {
        format!(
            "{text:?} is not a public key: pass @FILE (the .pub file), 64 hex digits, or 40 characters of Z85 in single quotes"
        )
    })
}

fn from_text(text: &str) -> Option<String> {
    let text = text.trim();
    let bytes: [u8; 32] = if text.len() == 64 {
        hex(text)?
    } else if text.len() == 40 {
        vigie_majordomo::keys::from_z85(text)?
    } else {
        return None;
    };
    Some(vigie_majordomo::keys::z85(&bytes))
}

fn hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::parse_key;

    const KEY: &str = "-T1ee2#J>cL=O[(WqW?pR&8MN/jIZb(+SG%[6>%k";

    #[test]
    fn a_key_is_read_from_a_file_hex_or_z85() -> anyhow::Result<()> {
        assert_eq!(parse_key(KEY).map_err(anyhow::Error::msg)?, KEY);
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("agent.key.pub");
        std::fs::write(&file, format!("{KEY}\n"))?;
        let arg = format!("@{}", file.display());
        assert_eq!(parse_key(&arg).map_err(anyhow::Error::msg)?, KEY);
        let bytes = vigie_majordomo::keys::from_z85(KEY).expect("z85");
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(parse_key(&hex).map_err(anyhow::Error::msg)?, KEY);
        let missing = parse_key("@/nonexistent/agent.pub").unwrap_err();
        assert!(missing.contains("/nonexistent/agent.pub"), "{missing}");
        assert!(parse_key("web-1").is_err());
        Ok(())
    }
}
