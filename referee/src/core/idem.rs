//! Idempotent calls. A call that changes things may carry the client's
//! idempotency key; its first successful answer is stored under that key
//! in the same batch as what the call did (so it survives a restart), and
//! a retry with the same key — after a lost reply — gets that answer
//! instead of acting twice. Keys are the caller's own (per operator) and
//! forgotten after [`IDEM_TTL`].

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigie_wire::tower::{ApiAnswer, ApiCall, Caller, ChangeId, IdemKey};

use crate::core::codec::{decode, encode};
use crate::core::table::Table;
use crate::core::turn::Turn;
use crate::error::RefereeError;
use crate::shell::clock::now_ms;
use crate::shell::store::Store;

/// How long a key is remembered.
pub const IDEM_TTL: Duration = Duration::from_secs(24 * 3600);
/// How often forgotten keys are deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
const PREFIX: &str = "idem/";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdemRecord {
    pub at_ms: u64,
    /// What the key was used for: a retry must be the same call.
    pub digest: String,
    pub answer: Stored,
}

/// A submission's answer is kept as its change ids (it can list thousands
/// of changes); a retry gets their current views.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Stored {
    Answer(ApiAnswer),
    Changes(Vec<ChangeId>),
}

/// `idem/<home tenant>/<operator>/<key>`: one operator's keys never meet
/// another's.
pub fn idem_key(caller: &Caller, key: &IdemKey) -> Vec<u8> {
    format!(
        "{PREFIX}{}/{}/{}",
        caller.home(),
        caller.operator,
        key.as_str()
    )
    .into_bytes()
}

pub fn digest(caller: &Caller, call: &ApiCall) -> String {
    let mut h = Sha256::new();
    h.update(caller.tenant.as_bytes());
    h.update([0]);
    h.update(encode(call));
    format!("{:x}", h.finalize())
}

/// The remembered keys, loaded at start.
#[derive(Debug)]
pub struct Remembered {
    pub records: Table<Vec<u8>, IdemRecord>,
    /// When it last pruned; `None` until its first tick, which prunes
    /// what aged while the referee was down.
    pruned: Option<Instant>,
}

impl Remembered {
    pub fn load(db: &dyn Store) -> Result<Self, RefereeError> {
        let mut records = std::collections::HashMap::new();
        for e in db.scan(PREFIX.as_bytes(), None) {
            let (key, value) = e?;
            let rec: IdemRecord = decode(&key, &value)?;
            records.insert(key, rec);
        }
        Ok(Self {
            records: Table::loaded(records, Vec::clone),
            pruned: None,
        })
    }

    /// Forgets keys older than the TTL (at most once a minute).
    pub fn prune(&mut self, now: Instant, turn: &mut Turn) {
        if self
            .pruned
            .is_some_and(|p| now.duration_since(p) < PRUNE_EVERY)
        {
            return;
        }
        self.pruned = Some(now);
        let cutoff = now_ms().saturating_sub(IDEM_TTL.as_millis() as u64);
        let old: Vec<Vec<u8>> = self
            .records
            .iter()
            .filter(|(_, r)| r.at_ms < cutoff)
            .map(|(k, _)| k.clone())
            .collect();
        for k in old {
            self.records.remove(turn, &k);
        }
    }
}
