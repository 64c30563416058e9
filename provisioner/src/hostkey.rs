//! SSH host keys and the pinning decision, no I/O: what `ssh-keyscan`
//! printed, the key or fingerprint the catalog pins, and what to do — use
//! the pinned key, pin the one first seen, or refuse a mismatch naming
//! both fingerprints. A key once pinned is never replaced here.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;
use sha2::{Digest, Sha256};

/// An OpenSSH public host key: its type and its base64 blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    pub kind: String,
    pub blob: String,
}

impl HostKey {
    /// `ssh-ed25519 AAAA… [comment]`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split_whitespace();
        let (kind, blob) = (parts.next()?, parts.next()?);
        let bytes = STANDARD.decode(blob).ok()?;
        // The blob starts with its own type, length-prefixed.
        let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
        if bytes.get(4..4 + len)? != kind.as_bytes() {
            return None;
        }
        Some(Self {
            kind: kind.to_owned(),
            blob: blob.to_owned(),
        })
    }

    /// OpenSSH's `SHA256:…` fingerprint (base64 of the blob's SHA-256,
    /// unpadded), as `ssh-keygen -l` and `ssh` print it.
    pub fn fingerprint(&self) -> String {
        let bytes = STANDARD.decode(&self.blob).unwrap_or_default();
        format!("SHA256:{}", STANDARD_NO_PAD.encode(Sha256::digest(bytes)))
    }

    /// The catalog's and known_hosts' form.
    pub fn line(&self) -> String {
        format!("{} {}", self.kind, self.blob)
    }
}

/// Every key of `ssh-keyscan`'s output (`host kind blob` lines; comments
/// and lines that do not parse are skipped).
pub fn parse_keyscan(out: &str) -> Vec<HostKey> {
    out.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (_, key) = l.trim().split_once(char::is_whitespace)?;
            HostKey::parse(key)
        })
        .collect()
}

/// What the catalog says a server's host key is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    Key(HostKey),
    Fingerprint(String),
}

impl Pin {
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        if text.starts_with("SHA256:") {
            return Some(Pin::Fingerprint(text.to_owned()));
        }
        HostKey::parse(text).map(Pin::Key)
    }

    fn fingerprint(&self) -> String {
        match self {
            Pin::Key(k) => k.fingerprint(),
            Pin::Fingerprint(f) => f.clone(),
        }
    }
}

/// The decision for one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The catalog's pin matches a key the server offers: connect trusting
    /// only this one.
    Pinned(HostKey),
    /// Nothing pinned: record this one in the catalog, then trust only it.
    FirstSeen(HostKey),
    /// Refused: the server offers none of the pinned key.
    Mismatch { expected: String, seen: Vec<String> },
    /// The server offered no key we can read.
    NoKey,
}

/// Preferred when nothing is pinned: the first of these the server offers.
const PREFERRED: [&str; 4] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ssh-rsa",
];

pub fn decide(pin: Option<&str>, seen: &[HostKey]) -> Decision {
    let Some(pin) = pin.filter(|p| !p.trim().is_empty()) else {
        let best = PREFERRED
            .iter()
            .find_map(|k| seen.iter().find(|s| s.kind == *k))
            .or_else(|| seen.first());
        return best.cloned().map_or(Decision::NoKey, Decision::FirstSeen);
    };
    let Some(pin) = Pin::parse(pin) else {
        return Decision::Mismatch {
            expected: format!("{pin:?} (not a host key nor a SHA256 fingerprint)"),
            seen: seen.iter().map(HostKey::fingerprint).collect(),
        };
    };
    let expected = pin.fingerprint();
    match seen.iter().find(|s| s.fingerprint() == expected) {
        Some(k) => Decision::Pinned(k.clone()),
        None if seen.is_empty() => Decision::NoKey,
        None => Decision::Mismatch {
            expected,
            seen: seen.iter().map(HostKey::fingerprint).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Two real ed25519 host keys (made with ssh-keygen) and their
    // fingerprints as `ssh-keygen -lf` prints them.
    const A: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGUpChAjEq0XhvYPDMZC1nzbMls3ceoahEsmCO3SnHrA";
    const B: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWL/ZHE98R1Cw6KuawNTiIOfSNSuNSxmcGXmd0tFRv3";

    fn key(s: &str) -> HostKey {
        HostKey::parse(s).expect("a key")
    }

    #[test]
    fn fingerprints_are_openssh_s() {
        assert_eq!(
            key(A).fingerprint(),
            "SHA256:9y6ENxHkTWRq5bZZs9E4mS/LR2eZlyhCdPgO7rmVA/4"
        );
    }

    #[test]
    fn a_key_whose_blob_names_another_type_is_refused() {
        assert!(HostKey::parse(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIGUpChAjEq0XhvYPDMZC1nzbMls3ceoahEsmCO3SnHrA"
        )
        .is_none());
        assert!(HostKey::parse("ssh-ed25519 !!!").is_none());
    }

    #[test]
    fn keyscan_output_is_read_comments_skipped() {
        let out = format!("# 192.0.2.2:22 SSH-2.0-OpenSSH\n192.0.2.2 {A}\n[192.0.2.2]:2222 {B}\n");
        assert_eq!(parse_keyscan(&out), vec![key(A), key(B)]);
    }

    #[test]
    fn nothing_pinned_takes_the_first_seen_preferring_ed25519() {
        assert_eq!(decide(None, &[key(A)]), Decision::FirstSeen(key(A)));
        assert_eq!(decide(Some(" "), &[]), Decision::NoKey);
    }

    #[test]
    fn a_pinned_key_or_fingerprint_must_be_offered() {
        assert_eq!(decide(Some(A), &[key(B), key(A)]), Decision::Pinned(key(A)));
        let fp = key(A).fingerprint();
        assert_eq!(decide(Some(&fp), &[key(A)]), Decision::Pinned(key(A)));
        assert_eq!(
            decide(Some(B), &[key(A)]),
            Decision::Mismatch {
                expected: key(B).fingerprint(),
                seen: vec![key(A).fingerprint()]
            }
        );
    }
}
