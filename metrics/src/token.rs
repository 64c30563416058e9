//! The bearer token a scrape must carry (`DATA/keys/metrics.token`): made
//! at the daemon's first start from the OS's random source, mode 0600,
//! read by Prometheus through `authorization: credentials_file`. Compared
//! in constant time, so a local user cannot guess it byte by byte from
//! how long a refusal takes.

use std::fs::{self, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::error::MetricsError;

/// Random bytes in a made token (shown as twice as many hex digits).
const TOKEN_BYTES: usize = 32;
/// The shortest token accepted from a file an operator wrote himself.
const MIN_TOKEN_CHARS: usize = 32;

/// A scrape's credentials (never printed: `Debug` hides it).
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> MetricsError + '_ {
    move |source| MetricsError::Token {
        path: path.to_path_buf(),
        reason: source.to_string(),
    }
}

/// A new token, hex.
fn fresh() -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `text` can be a bearer token: long enough, and only the
/// characters of RFC 6750's `b64token` (no space, no control).
fn well_formed(text: &str) -> bool {
    text.len() >= MIN_TOKEN_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b))
}

impl Token {
    /// The token in `path`, made there (0600, written whole or not at all)
    /// if there is none yet. A file readable by others is narrowed to 0600
    /// (`metrics_token_tightened`); a file that is not a token is refused.
    pub fn ensure(path: &Path) -> Result<Self, MetricsError> {
        if !path.exists() {
            Self::make(path)?;
        }
        let meta = fs::symlink_metadata(path).map_err(io(path))?;
        if !meta.is_file() {
            return Err(MetricsError::Token {
                path: path.to_path_buf(),
                reason: "not a regular file".into(),
            });
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            fs::set_permissions(path, Permissions::from_mode(0o600)).map_err(io(path))?;
            tracing::warn!(event = "metrics_token_tightened", path = %path.display(), was = format!("{mode:o}"), now = "600");
        }
        let text = fs::read_to_string(path).map_err(io(path))?;
        let text = text.trim();
        if !well_formed(text) {
            return Err(MetricsError::Token {
                path: path.to_path_buf(),
                reason: format!(
                    "not a token: at least {MIN_TOKEN_CHARS} characters among letters, digits \
                     and -._~+/= (delete the file to have a new one made)"
                ),
            });
        }
        Ok(Self(text.to_owned()))
    }

    /// Writes a new token under a temporary name, then renames it: a crash
    /// never leaves a partial token where Prometheus reads it.
    fn make(path: &Path) -> Result<(), MetricsError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            vigie_escalator::ensure_private_dir(dir).map_err(io(dir))?;
        }
        let tmp = PathBuf::from(format!("{}.tmp", path.display()));
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        writeln!(f, "{}", fresh())
            .and_then(|()| f.sync_all())
            .map_err(io(&tmp))?;
        fs::rename(&tmp, path).map_err(io(path))?;
        tracing::info!(event = "metrics_token_made", path = %path.display());
        Ok(())
    }

    /// Whether an `Authorization` header's value is `Bearer` and this
    /// token (the scheme in any case, as RFC 7235 says).
    pub fn admits(&self, authorization: &str) -> bool {
        let Some((scheme, given)) = authorization.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && bool::from(given.trim().as_bytes().ct_eq(self.0.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_made_once_private_and_random() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("metrics.token");
        let t = Token::ensure(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(t.0.len(), 2 * TOKEN_BYTES);
        assert_eq!(Token::ensure(&path).unwrap().0, t.0, "kept across starts");
        let other = tempfile::tempdir().unwrap();
        let u = Token::ensure(&other.path().join("metrics.token")).unwrap();
        assert_ne!(u.0, t.0);
        assert!(!format!("{t:?}").contains(&t.0), "never printed");
    }

    #[test]
    fn only_the_bearer_token_is_admitted() {
        let dir = tempfile::tempdir().unwrap();
        let t = Token::ensure(&dir.path().join("metrics.token")).unwrap();
        let good = format!("Bearer {}", t.0);
        assert!(t.admits(&good));
        assert!(t.admits(&format!("bearer {}", t.0)));
        assert!(!t.admits(""));
        assert!(!t.admits("Bearer"));
        assert!(!t.admits(&format!("Basic {}", t.0)));
        assert!(!t.admits(&format!("Bearer {}", &t.0[1..])));
        assert!(!t.admits(&format!("Bearer {}x", t.0)));
        let mut flipped = t.0.clone().into_bytes();
        flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
        assert!(!t.admits(&format!("Bearer {}", String::from_utf8(flipped).unwrap())));
    }

    #[test]
    fn a_readable_token_is_narrowed_and_a_bad_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.token");
        fs::write(&path, format!("{}\n", "k".repeat(40))).unwrap();
        fs::set_permissions(&path, Permissions::from_mode(0o644)).unwrap();
        let t = Token::ensure(&path).unwrap();
        assert!(t.admits(&format!("Bearer {}", "k".repeat(40))));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        fs::write(&path, "short\n").unwrap();
        assert!(Token::ensure(&path).is_err());
        fs::write(&path, format!("{} {}\n", "k".repeat(20), "k".repeat(20))).unwrap();
        assert!(Token::ensure(&path).is_err());
    }
}
