//! Where the referee's state is stored, as the referee needs it: a record
//! by key, the records under a prefix in key order (at start, and for the
//! few reads of history), and one batch written whole or not at all.
//! `Database` is the Escalator store the referee runs on; `mem_store`
//! keeps the same records in memory for the referee's own tests.

use vigie_escalator::{Database, EscalatorError, RangeSpec};
use vigie_wire::tower::{ApiFault, ApiFaultKind};

use crate::core::codec::decode;
use crate::error::RefereeError;

pub use crate::core::codec::Entry;
/// Batch operations: `None` deletes.
pub type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;
/// Records in key order, each read or failed.
pub type Entries<'a> = Box<dyn Iterator<Item = Result<Entry, StoreError>> + 'a>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Escalator(#[from] EscalatorError),
    /// A batch Escalator would refuse (its limits; `mem_store`).
    #[error("{0}")]
    Refused(String),
}

pub trait Store {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// The records whose key starts with `prefix`, from the key `start`
    /// (a whole key, as Escalator's range start) on.
    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>) -> Entries<'a>;
    /// At most `limit` records under `prefix` from the whole key `start`
    /// on: one bounded read, whatever follows.
    fn page(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.scan(prefix, Some(start)).take(limit).collect()
    }
    /// The records of `keys`, in their order: one round of requests
    /// rather than one round trip each where the store can.
    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.get(k)).collect()
    }
    /// Writes `writes` (drained) in one durable batch: all or nothing.
    fn write(&self, writes: &mut Writes) -> Result<(), StoreError>;
}

/// Gets in flight at once by `get_many` on Escalator: a start's last
/// 1,000 finished changes cost a round trip per window, not per change.
const GETS_IN_FLIGHT: usize = 128;

impl Store for Database {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(Database::get(self, key)?)
    }

    fn get_many(&self, keys: &[Vec<u8>]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        Ok(Database::get_many(self, keys, GETS_IN_FLIGHT)?)
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>) -> Entries<'a> {
        let spec = RangeSpec {
            prefix: Some(prefix.to_vec()),
            start: start.map(<[u8]>::to_vec),
            ..RangeSpec::default()
        };
        Box::new(
            self.iter(spec)
                .map(|e| Ok(e.map(|e| (e.key, e.value.unwrap_or_default()))?)),
        )
    }

    fn page(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let spec = RangeSpec {
            prefix: Some(prefix.to_vec()),
            start: Some(start.to_vec()),
            limit: Some(u32::try_from(limit).unwrap_or(u32::MAX)),
            ..RangeSpec::default()
        };
        self.iter(spec)
            .map(|e| Ok(e.map(|e| (e.key, e.value.unwrap_or_default()))?))
            .collect()
    }

    fn write(&self, writes: &mut Writes) -> Result<(), StoreError> {
        let mut batch = self.batch();
        for (k, v) in writes.drain(..) {
            match v {
                Some(v) => batch.put(&k, &v),
                None => batch.delete(&k),
            };
        }
        batch.write()?;
        Ok(())
    }
}

/// Every record under `prefix`, decoded (small registries: keys, operators).
pub fn scan_all<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    prefix: &[u8],
) -> Result<Vec<T>, ApiFault> {
    let storage = |e: String| ApiFault::new(ApiFaultKind::Storage, e);
    store
        .scan(prefix, None)
        .map(|e| {
            let (k, v) = e.map_err(|e| storage(e.to_string()))?;
            decode::<T>(&k, &v).map_err(|e| storage(e.to_string()))
        })
        .collect()
}

impl From<StoreError> for RefereeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Escalator(e) => RefereeError::Escalator(e),
            StoreError::Refused(why) => RefereeError::Store(why),
        }
    }
}
