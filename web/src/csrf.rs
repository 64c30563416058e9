//! CSRF tokens: every form that acts carries one, derived from the
//! daemon's secret (random at each start) and the session's id, and
//! compared in constant time. A token of another session, of an ended
//! one, or of a daemon before a restart does not pass.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

#[derive(Clone)]
pub struct Csrf {
    key: [u8; 32],
}

impl std::fmt::Debug for Csrf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Csrf(..)")
    }
}

impl Csrf {
    pub fn new() -> Self {
        Self {
            key: rand::random(),
        }
    }

    /// The token of the session `session_id`.
    pub fn token(&self, session_id: &str) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(b"csrf:");
        h.update(session_id.as_bytes());
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `given` is the session's token.
    pub fn check(&self, session_id: &str, given: &str) -> bool {
        let want = self.token(session_id);
        want.len() == given.len() && bool::from(want.as_bytes().ct_eq(given.as_bytes()))
    }
}

impl Default for Csrf {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::Csrf;

    #[test]
    fn a_token_passes_for_its_own_session_only() {
        let c = Csrf::new();
        let t = c.token("aaaa");
        assert!(c.check("aaaa", &t));
        assert!(!c.check("bbbb", &t));
        assert!(!c.check("aaaa", ""));
        assert!(
            !Csrf::new().check("aaaa", &t),
            "a restarted daemon's key differs"
        );
    }
}
