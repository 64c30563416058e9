//! The audit: append-only, hash-chained records stored beside the state
//! they describe (same Escalator batch, so a state change and its record
//! land together or not at all).
//!
//! `hash = sha256(canonical(record without hash))`, where the canonical form
//! includes `prev_hash`: editing a record breaks its hash, deleting one
//! breaks the sequence or the next record's `prev_hash`, deleting the tail
//! disagrees with `audit/head`.

use sha2::{Digest, Sha256};
use vigie_wire::tower::{AuditRecord, ChangeState};

/// What an audit record says was done. The stored words are stable: the
/// chain holds them, and operators filter on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditAction {
    Submitted,
    HostRegistered,
    Deployed,
    HostReset,
    Finished,
    StepApplied,
    StepFailed,
    StepUndone,
    UndoFailed,
    LabelsSet,
    Retried,
    HostHeld,
    HostReleased,
    HostRemoved,
    OperatorRefused,
    OperatorAdded,
    OperatorKeyRotated,
    OperatorRevoked,
    OperatorGranted,
    OperatorUngranted,
    KeyAdded,
    KeyAccepted,
    KeyReadmitted,
    KeyRevoked,
    KeysPending,
    AppAdded,
    AppRemoved,
    PoolAdded,
    IpsAllocated,
    IpsReleased,
    ServersProvisioning,
    ServerUnhosted,
    ServerEnrolled,
    ProvisionFailed,
    HostKeySet,
    HostKeyPinned,
    ServersImported,
    ServerEdited,
    ServersRemoved,
    SessionUndone,
    /// A deploy run by the tower: started, its lock taken over, ended.
    DeployStarted,
    DeployUnlocked,
    DeployEnded,
    /// A verb run on a deployed environment (`undeploy`, `stop`, `rollback`...).
    DeployVerb,
    /// An operator's `continue` or `abort` of a rollout after its canary.
    DeployCommanded,
    /// The web console's credentials (`web_auth.rs`).
    TokenIssued,
    SessionIssued,
    CredentialRevoked,
    /// A deploy secret set or removed (its name and version, never its value).
    SecretSet,
    SecretRemoved,
    /// A change ended by the tower (cancelled, abandoned): its state's word.
    Ended(ChangeState),
}

impl AuditAction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::HostRegistered => "host_registered",
            Self::Deployed => "deployed",
            Self::HostReset => "host_reset",
            Self::Finished => "finished",
            Self::StepApplied => "step_applied",
            Self::StepFailed => "step_failed",
            Self::StepUndone => "step_undone",
            Self::UndoFailed => "undo_failed",
            Self::LabelsSet => "labels_set",
            Self::Retried => "retried",
            Self::HostHeld => "host_held",
            Self::HostReleased => "host_released",
            Self::HostRemoved => "host_removed",
            Self::OperatorRefused => "operator_refused",
            Self::OperatorAdded => "operator_added",
            Self::OperatorKeyRotated => "operator_key_rotated",
            Self::OperatorRevoked => "operator_revoked",
            Self::OperatorGranted => "operator_granted",
            Self::OperatorUngranted => "operator_ungranted",
            Self::KeyAdded => "key_added",
            Self::KeyAccepted => "key_accepted",
            Self::KeyReadmitted => "key_readmitted",
            Self::KeyRevoked => "key_revoked",
            Self::KeysPending => "keys_pending",
            Self::AppAdded => "app_added",
            Self::AppRemoved => "app_removed",
            Self::PoolAdded => "pool_added",
            Self::IpsAllocated => "ips_allocated",
            Self::IpsReleased => "ips_released",
            Self::ServersProvisioning => "servers_provisioning",
            Self::ServerUnhosted => "server_unhosted",
            Self::ServerEnrolled => "server_enrolled",
            Self::ProvisionFailed => "provision_failed",
            Self::HostKeySet => "host_key_set",
            Self::HostKeyPinned => "host_key_pinned",
            Self::ServersImported => "servers_imported",
            Self::ServerEdited => "server_edited",
            Self::ServersRemoved => "servers_removed",
            Self::SessionUndone => "session_undone",
            Self::DeployStarted => "deploy_started",
            Self::SecretSet => "secret_set",
            Self::SecretRemoved => "secret_removed",
            Self::DeployUnlocked => "deploy_unlocked",
            Self::DeployEnded => "deploy_ended",
            Self::DeployVerb => "deploy_verb",
            Self::DeployCommanded => "deploy_commanded",
            Self::TokenIssued => "token_issued",
            Self::SessionIssued => "session_issued",
            Self::CredentialRevoked => "credential_revoked",
            Self::Ended(state) => state.word(),
        }
    }
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
pub const HEAD_KEY: &[u8] = b"audit/head";
pub const PREFIX: &[u8] = b"audit/rec/";

pub fn record_key(seq: u64) -> Vec<u8> {
    format!("audit/rec/{seq:020}").into_bytes()
}

pub const TENANT_PREFIX: &[u8] = b"audit/tenant/";

/// Where a tenant's last audit number is kept.
pub fn tenant_key(tenant: &str) -> Vec<u8> {
    let mut k = TENANT_PREFIX.to_vec();
    k.extend_from_slice(tenant.as_bytes());
    k
}

/// Longest summary a record keeps: whatever a caller names (a title, a
/// list of addresses), one record stays small. What is cut is said.
pub const MAX_SUMMARY: usize = 4 * 1024;
/// Longest output tail a record keeps (a step's stdout and stderr tails,
/// 4 KiB each from the drivers): the end is kept, as a tail.
pub const MAX_OUTPUT_TAIL: usize = 8 * 1024;

/// `rec` with its free-text fields within their bounds, cut on character
/// boundaries, the summary saying how much was left out.
pub fn bounded(mut rec: AuditRecord) -> AuditRecord {
    if rec.summary.len() > MAX_SUMMARY {
        let cut = rec.summary.len();
        let mut end = MAX_SUMMARY - 64;
        while !rec.summary.is_char_boundary(end) {
            end -= 1;
        }
        rec.summary.truncate(end);
        rec.summary
            .push_str(&format!(" … ({} of {cut} bytes kept)", end));
    }
    if rec.output_tail.len() > MAX_OUTPUT_TAIL {
        let mut start = rec.output_tail.len() - MAX_OUTPUT_TAIL;
        while !rec.output_tail.is_char_boundary(start) {
            start += 1;
        }
        rec.output_tail.drain(..start);
    }
    rec
}

/// The chain's end: what the next record links to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditChain {
    pub last_seq: u64,
    pub last_hash: String,
}

impl Default for AuditChain {
    fn default() -> Self {
        Self {
            last_seq: 0,
            last_hash: GENESIS.to_owned(),
        }
    }
}

impl AuditChain {
    /// Numbers, links and seals `rec`, and moves the head past it.
    pub fn seal(&mut self, mut rec: AuditRecord) -> AuditRecord {
        rec.seq = self.last_seq + 1;
        rec.prev_hash = self.last_hash.clone();
        rec.hash = hash(&rec);
        self.last_seq = rec.seq;
        self.last_hash = rec.hash.clone();
        rec
    }

    pub fn encode_head(&self) -> Vec<u8> {
        format!("{} {}", self.last_seq, self.last_hash).into_bytes()
    }

    pub fn decode_head(bytes: &[u8]) -> Option<Self> {
        let text = std::str::from_utf8(bytes).ok()?;
        let (seq, hash) = text.split_once(' ')?;
        Some(Self {
            last_seq: seq.parse().ok()?,
            last_hash: hash.to_owned(),
        })
    }
}

fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

fn opt(h: &mut Sha256, s: Option<&str>) {
    match s {
        Some(s) => {
            h.update([1]);
            field(h, s.as_bytes());
        }
        None => h.update([0]),
    }
}

/// Length-prefixed fields in a fixed order: independent of any encoding
/// library, so old records verify forever.
pub fn hash(r: &AuditRecord) -> String {
    let mut h = Sha256::new();
    h.update(r.seq.to_le_bytes());
    h.update(r.at_ms.to_le_bytes());
    for s in [
        &r.tenant,
        &r.operator,
        &r.host,
        &r.change,
        &r.action,
        &r.summary,
    ] {
        field(&mut h, s.as_bytes());
    }
    opt(&mut h, r.step.map(|s| s.to_string()).as_deref());
    opt(&mut h, r.exit_code.map(|c| c.to_string()).as_deref());
    opt(&mut h, r.before_digest.as_deref());
    opt(&mut h, r.after_digest.as_deref());
    field(&mut h, r.output_tail.as_bytes());
    field(&mut h, r.prev_hash.as_bytes());
    // Records made before tenant numbers keep the hash they were sealed with.
    if r.tenant_seq > 0 {
        h.update(b"tenant_seq");
        h.update(r.tenant_seq.to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Walks records in sequence order and checks every link; `head` is the
/// stored head. Returns the verified head, or what is wrong.
pub fn verify_chain(
    records: impl IntoIterator<Item = AuditRecord>,
    head: &AuditChain,
) -> Result<AuditChain, String> {
    let mut at = AuditChain::default();
    for r in records {
        let expected = at.last_seq + 1;
        if r.seq != expected {
            return Err(format!(
                "record {expected} is missing (the next record is {}): records were deleted",
                r.seq
            ));
        }
        if r.prev_hash != at.last_hash {
            return Err(format!(
                "record {} does not link to record {}",
                r.seq, at.last_seq
            ));
        }
        if hash(&r) != r.hash {
            return Err(format!(
                "record {} does not match its hash: it was edited",
                r.seq
            ));
        }
        at.last_seq = r.seq;
        at.last_hash = r.hash;
    }
    if at != *head {
        return Err(format!(
            "the chain ends at record {} but the head says {}: records were deleted at the end",
            at.last_seq, head.last_seq
        ));
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_actions_keep_their_stored_words() {
        use vigie_wire::tower::ChangeState;
        let words = [
            AuditAction::Submitted.as_str(),
            AuditAction::StepApplied.as_str(),
            AuditAction::KeyRevoked.as_str(),
            AuditAction::Ended(ChangeState::Cancelled).as_str(),
            AuditAction::Ended(ChangeState::Abandoned).as_str(),
        ];
        assert_eq!(
            words,
            [
                "submitted",
                "step_applied",
                "key_revoked",
                "cancelled",
                "abandoned"
            ]
        );
    }

    fn rec(action: &str) -> AuditRecord {
        AuditRecord {
            seq: 0,
            at_ms: 1,
            tenant: "t".into(),
            operator: "op".into(),
            host: "web-1".into(),
            change: "c1".into(),
            step: Some(0),
            action: action.into(),
            summary: "wrote 3 bytes".into(),
            exit_code: None,
            before_digest: None,
            after_digest: Some("ab".into()),
            output_tail: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
            tenant_seq: 0,
        }
    }

    fn chain(n: usize) -> (Vec<AuditRecord>, AuditChain) {
        let mut c = AuditChain::default();
        let v = (0..n).map(|i| c.seal(rec(&format!("a{i}")))).collect();
        (v, c)
    }

    #[test]
    fn intact_chain_verifies() {
        let (v, head) = chain(5);
        assert_eq!(verify_chain(v, &head).unwrap(), head);
        assert!(verify_chain(Vec::new(), &AuditChain::default()).is_ok());
    }

    #[test]
    fn edit_delete_and_truncation_are_caught() {
        let (mut v, head) = chain(5);
        v[2].summary = "wrote 4 bytes".into();
        assert!(verify_chain(v, &head).unwrap_err().contains("edited"));

        let (mut v, head) = chain(5);
        v.remove(1);
        assert!(verify_chain(v, &head).unwrap_err().contains("missing"));

        let (mut v, head) = chain(5);
        v.pop();
        assert!(verify_chain(v, &head).unwrap_err().contains("at the end"));

        // Re-sealing an edited record does not help: the next one no longer links.
        let (mut v, head) = chain(5);
        v[1].summary = "forged".into();
        v[1].hash = hash(&v[1]);
        assert!(verify_chain(v, &head)
            .unwrap_err()
            .contains("does not link"));

        // A record's tenant number is sealed too.
        let mut c = AuditChain::default();
        let mut v: Vec<AuditRecord> = (1..=3)
            .map(|n| {
                c.seal(AuditRecord {
                    tenant_seq: n,
                    ..rec("a")
                })
            })
            .collect();
        v[1].tenant_seq = 7;
        assert!(verify_chain(v, &c).unwrap_err().contains("edited"));
    }

    #[test]
    fn a_record_s_summary_and_tail_are_bounded_saying_what_was_cut() {
        let r = bounded(AuditRecord {
            summary: "é".repeat(40_000),
            output_tail: format!("{}end", "x".repeat(100_000)),
            ..rec("ips_allocated")
        });
        assert!(r.summary.len() <= MAX_SUMMARY, "{}", r.summary.len());
        assert!(r.summary.ends_with("of 80000 bytes kept)"), "{}", r.summary);
        assert_eq!(r.output_tail.len(), MAX_OUTPUT_TAIL);
        assert!(r.output_tail.ends_with("end"));
        let small = rec("a");
        assert_eq!(bounded(small.clone()), small);
    }

    /// A record without a host or change, as `audit_host` seals it, and
    /// one made before tenant numbers: their hash and stored bytes, pinned.
    /// Any change to the record's type (an `Option` host, a version field)
    /// must keep chains already stored verifying and decoding.
    #[test]
    fn records_already_sealed_keep_their_hash_and_bytes() {
        let hostless = AuditRecord {
            host: String::new(),
            change: String::new(),
            step: None,
            tenant_seq: 3,
            ..rec("key_added")
        };
        let mut c = AuditChain::default();
        let sealed = c.seal(hostless);
        assert_eq!(
            sealed.hash,
            "84dd1860fcb90c276e7d063096d4c5b6abd6666eef3b2fe1e56092f38390276f"
        );
        let bytes = vigie_wire::encode(&sealed).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // MessagePack, fields by position (no names).
        let expected = concat!(
            "56470001", // envelope: VG, version 1
            "dc0010", // 16 fields, in order
            "01", // seq
            "01", // at_ms
            "a174", // tenant
            "a26f70", // operator
            "a0", // host: empty
            "a0", // change: empty
            "c0", // step: none
            "a96b65795f6164646564", // action
            "ad77726f74652033206279746573", // summary
            "c0", // exit_code
            "c0", // before_digest
            "a26162", // after_digest
            "a0", // output_tail
            "d94030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030303030", // prev_hash
            "d94038346464313836306663623930633237366537643036333039366434633562366162643636363665656633623266653165353630393266333833393032373666", // hash
            "03", // tenant_seq
        );
        assert_eq!(hex, expected);
        let stored: Vec<u8> = (0..expected.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&expected[i..i + 2], 16).unwrap())
            .collect();
        let read: AuditRecord = vigie_wire::decode(&stored).unwrap();
        assert_eq!(read, sealed, "the stored bytes decode to the record");
        let old = c.seal(rec("step_applied"));
        assert_eq!(
            old.hash,
            "2a9ee95d095c5ab002b10effc02005116751454da4b5b9c373f9f47062e48cdb"
        );
        assert_eq!(verify_chain([read, old], &c), Ok(c.clone()));
    }

    #[test]
    fn head_roundtrip() {
        let (_, head) = chain(3);
        assert_eq!(AuditChain::decode_head(&head.encode_head()), Some(head));
    }
}
