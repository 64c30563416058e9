//! Durations as operators write them: `500ms`, `30s`, `2m`, `1h`, `1m30s`.

/// The longest timeout or interval a step may ask for: anything longer is
/// almost certainly a typo, and would hold the host's queue for a day.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// Parses a duration into milliseconds: one or more `<integer><unit>` parts
/// with unit `ms`, `s`, `m` or `h`. A bare number is refused because its unit
/// would be a guess. The result is > 0 and ≤ 24h.
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let invalid = || format!("invalid duration {text:?} (write e.g. 500ms, 30s, 2m, 1h)");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: u64 = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid());
        }
        let (number, tail) = rest.split_at(digits);
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            _ => return Err(invalid()),
        };
        // Overflow can only come from absurd input, which is over the cap anyway.
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(scale))
            .ok_or_else(|| too_long(text))?;
        total = total.checked_add(part).ok_or_else(|| too_long(text))?;
        rest = tail;
    }
    if total == 0 {
        return Err(format!("duration {text:?} must be longer than zero"));
    }
    if total > MAX_DURATION_MS {
        return Err(too_long(text));
    }
    Ok(total)
}

fn too_long(text: &str) -> String {
    format!("duration {text:?} is longer than 24h")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_unit_and_compound_forms() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("30s"), Ok(30_000));
        assert_eq!(parse_duration_ms("2m"), Ok(120_000));
        assert_eq!(parse_duration_ms("1h"), Ok(3_600_000));
        assert_eq!(parse_duration_ms("1m30s"), Ok(90_000));
        assert_eq!(parse_duration_ms("24h"), Ok(MAX_DURATION_MS));
    }

    #[test]
    fn refuses_zero_bare_numbers_unknown_units_and_more_than_a_day() {
        for bad in [
            "", "fast", "30", "10 s", "1d", "1.5s", "-1s", "s", "0s", "0ms",
        ] {
            let err = parse_duration_ms(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        assert!(parse_duration_ms("24h1ms").unwrap_err().contains("24h"));
        assert!(parse_duration_ms("99999999999999999999h").is_err());
    }
}
