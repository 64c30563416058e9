//! The key registry's rules and words: which Curve25519 public key is
//! well formed, how many may wait pending, the key calls. The registry
//! itself is `access.rs`'s; the calls that change it, audited and
//! published on `KEYS_TOPIC` for the majordomo's copy, are
//! `handlers/keys.rs`.

use vigie_wire::tower::{ApiFault, ApiFaultKind};

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// A Z85 Curve25519 public key: 40 characters of the Z85 alphabet.
pub(crate) fn check_public(public: &str) -> Result<(), ApiFault> {
    let ok = public.len() == 40 && zmq_z85_alphabet(public);
    ok.then_some(()).ok_or_else(|| {
        fault(
            ApiFaultKind::Invalid,
            format!("{public:?} is not a Z85 public key (40 characters)"),
        )
    })
}

fn zmq_z85_alphabet(s: &str) -> bool {
    const Z85: &str =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    s.chars().all(|c| Z85.contains(c))
}

/// Most pending keys the registry holds: knocks beyond it are counted,
/// not stored (an unauthenticated peer must not grow the tower's state
/// without bound).
pub const MAX_PENDING: usize = 1_000;

/// The key calls of the API, in one place.
pub enum KeyCall {
    List,
    Pending {
        knocks: Vec<vigie_wire::front::Knock>,
        dropped: u64,
    },
    Add {
        host: String,
        public: String,
    },
    Accept {
        host: String,
        public: String,
    },
    Revoke {
        host: String,
    },
    /// Accepts again a key revoked for this host.
    Readmit {
        host: String,
        public: String,
    },
}
