//! Why an operator's command failed, as a script tells causes apart: one
//! exit code per cause, sysexits-style, and the same code and word in the
//! `--json` error object. The tower's refusals arrive as `ApiFaultKind`s;
//! the CLI's own causes (no tower listening, no answer in time, a key the
//! door turned down) are added here. Pure: no I/O.

use vigie_client::ClientError;
use vigie_wire::tower::ApiFaultKind;

/// The cause of a failed command. `code` is its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Something else went wrong (a local file, an unexpected answer).
    Other,
    /// The command line or the connection settings (EX_USAGE).
    Usage,
    /// The tower refused what was sent as invalid (EX_DATAERR).
    Data,
    /// Nothing listens at the tower's address, or the host asked for cannot
    /// be reached (EX_UNAVAILABLE).
    Unavailable,
    /// No answer in time, or the tower's storage failed: try again later
    /// (EX_TEMPFAIL).
    Temporary,
    /// The operator may not do this, or the door refused the key (EX_NOPERM).
    Forbidden,
    /// The thing named does not exist (in this tenant).
    NotFound,
    /// It exists, but its state forbids the request.
    Conflict,
}

impl Cause {
    /// Every cause, for the tests.
    #[cfg(test)]
    pub const ALL: [Cause; 8] = [
        Cause::Other,
        Cause::Usage,
        Cause::Data,
        Cause::Unavailable,
        Cause::Temporary,
        Cause::Forbidden,
        Cause::NotFound,
        Cause::Conflict,
    ];

    /// The exit status: sysexits' where it has one; 79 and 80 are past its
    /// range (64–78), so they never mean something else.
    pub fn code(self) -> u8 {
        match self {
            Cause::Other => 1,
            Cause::Usage => 64,
            Cause::Data => 65,
            Cause::Unavailable => 69,
            Cause::Temporary => 75,
            Cause::Forbidden => 77,
            Cause::NotFound => 79,
            Cause::Conflict => 80,
        }
    }

    /// The word in the JSON error object's `kind`.
    pub fn word(self) -> &'static str {
        match self {
            Cause::Other => "failure",
            Cause::Usage => "usage",
            Cause::Data => "data",
            Cause::Unavailable => "unavailable",
            Cause::Temporary => "temporary",
            Cause::Forbidden => "forbidden",
            Cause::NotFound => "not_found",
            Cause::Conflict => "conflict",
        }
    }

    /// A refusal from the tower, by its wire kind.
    pub fn of_fault(kind: ApiFaultKind) -> Self {
        match kind {
            ApiFaultKind::Malformed | ApiFaultKind::Invalid | ApiFaultKind::Tampered => Cause::Data,
            ApiFaultKind::NotFound => Cause::NotFound,
            ApiFaultKind::Conflict => Cause::Conflict,
            ApiFaultKind::Forbidden => Cause::Forbidden,
            ApiFaultKind::Storage => Cause::Temporary,
            ApiFaultKind::Unavailable => Cause::Unavailable,
        }
    }

    /// An error of the API client.
    pub fn of_client(e: &ClientError) -> Self {
        match e {
            ClientError::Refused(f) => Cause::of_fault(f.kind),
            ClientError::Door(_) => Cause::Forbidden,
            ClientError::Timeout { .. } | ClientError::NotFinal { .. } => Cause::Temporary,
            ClientError::Zmq(_) | ClientError::Wire(_) | ClientError::Unexpected(_) => Cause::Other,
        }
    }

    /// The cause of an error: the first in its chain that says one.
    pub fn of(e: &anyhow::Error) -> Self {
        e.chain()
            .find_map(|c| {
                c.downcast_ref::<Failure>()
                    .map(|f| f.cause)
                    .or_else(|| c.downcast_ref::<ClientError>().map(Cause::of_client))
                    .or_else(|| c.downcast_ref::<clap::Error>().map(|_| Cause::Usage))
            })
            .unwrap_or(Cause::Other)
    }
}

/// An error whose cause is known, said in words.
#[derive(Debug)]
pub struct Failure {
    pub cause: Cause,
    pub message: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// An `anyhow::Error` carrying its cause for `main`.
    pub fn error(cause: Cause, message: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(Self {
            cause,
            message: message.into(),
        })
    }
}

/// The `--json` error object: `{"error":{"code":…,"kind":…,"message":…}}`.
pub fn json_object(cause: Cause, message: &str) -> serde_json::Value {
    serde_json::json!({
        "error": { "code": cause.code(), "kind": cause.word(), "message": message }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_its_own_code_and_word() {
        let codes: std::collections::BTreeSet<u8> = Cause::ALL.iter().map(|c| c.code()).collect();
        let words: std::collections::BTreeSet<&str> = Cause::ALL.iter().map(|c| c.word()).collect();
        assert_eq!(codes.len(), Cause::ALL.len());
        assert_eq!(words.len(), Cause::ALL.len());
        assert!(!codes.contains(&0));
    }

    #[test]
    fn a_refusal_keeps_its_cause_through_context() {
        let fault = vigie_wire::tower::ApiFault::new(ApiFaultKind::Forbidden, "no");
        let e = anyhow::Error::from(ClientError::Refused(fault)).context("hosts add");
        assert_eq!(Cause::of(&e), Cause::Forbidden);
        let e = Failure::error(Cause::NotFound, "no change c9");
        assert_eq!(Cause::of(&e.context("status")), Cause::NotFound);
        assert_eq!(Cause::of(&anyhow::anyhow!("disk")), Cause::Other);
    }
}
