//! Host ids: the names by which the tower routes change requests.

use crate::ChangeError;

/// Longest host id. Ids become socket topics and key-value keys, so they are
/// kept short and free of separators.
pub const MAX_HOST_ID: usize = 64;

/// Checks a host id: 1-64 characters of `[A-Za-z0-9._-]`, not starting with
/// `.` or `-` (so an id is never mistaken for a hidden file or an option).
pub fn validate_host_id(id: &str) -> Result<(), ChangeError> {
    let refuse = |reason: String| {
        Err(ChangeError::HostId {
            id: id.to_string(),
            reason,
        })
    };
    if id.is_empty() {
        return refuse("it is empty".into());
    }
    if id.len() > MAX_HOST_ID {
        return refuse(format!("it is longer than {MAX_HOST_ID} characters"));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return refuse(format!(
            "{bad:?} is not allowed (letters, digits, '.', '_' and '-' only)"
        ));
    }
    if id.starts_with(['.', '-']) {
        return refuse("it must not start with '.' or '-'".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_ids() {
        for id in [
            "web-1",
            "db_2",
            "a",
            "host.example.com",
            "9",
            &"x".repeat(64),
        ] {
            assert!(validate_host_id(id).is_ok(), "{id}");
        }
    }

    #[test]
    fn refuses_empty_long_odd_characters_and_leading_dot_or_dash() {
        let too_long = "x".repeat(65);
        for (id, why) in [
            ("", "empty"),
            (too_long.as_str(), "longer than 64"),
            ("web 1", "' '"),
            ("web/1", "'/'"),
            ("wéb", "'é'"),
            ("web*", "'*'"),
            (".hidden", "start with"),
            ("-rf", "start with"),
        ] {
            let msg = validate_host_id(id).unwrap_err().to_string();
            assert!(msg.contains(&format!("{id:?}")), "{msg}");
            assert!(msg.contains(why), "{id}: {msg}");
        }
    }
}
