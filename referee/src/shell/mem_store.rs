//! The referee's records in memory, for its own tests: what `Store` gives
//! the referee, without starting an Escalator. A batch is checked against
//! Escalator's limits first (operations, key and value sizes, its frame),
//! so what a test stores here the referee could store in Escalator.

use std::collections::BTreeMap;
use std::sync::Mutex;

use vigie_wire::escalator::BatchOp;
use vigie_wire::limits::{MAX_BATCH_OPS, MAX_FRAME, MAX_KEY, MAX_VALUE};

use crate::shell::store::{Entries, Store, StoreError, Writes};

/// The records by key.
#[derive(Debug, Default)]
pub struct MemStore {
    records: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

/// Room left in a frame for the request's own fields (id, database name).
const FRAME_OVERHEAD: usize = 256;

impl MemStore {
    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A test that panicked holding the lock leaves whole records.
        self.records.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn check(writes: &Writes) -> Result<(), StoreError> {
        if writes.len() > MAX_BATCH_OPS {
            let n = writes.len();
            return Err(StoreError::Refused(format!(
                "batch of {n} operations exceeds {MAX_BATCH_OPS}"
            )));
        }
        let prefix = crate::core::model::DB.len() + 1;
        let mut ops = Vec::with_capacity(writes.len());
        for (k, v) in writes {
            if k.len() + prefix > MAX_KEY {
                return Err(StoreError::Refused(format!("key exceeds {MAX_KEY}")));
            }
            match v {
                Some(v) if v.len() > MAX_VALUE => {
                    return Err(StoreError::Refused(format!("value exceeds {MAX_VALUE}")));
                }
                Some(v) => ops.push(BatchOp::Put {
                    key: k.clone(),
                    value: v.clone(),
                }),
                None => ops.push(BatchOp::Delete { key: k.clone() }),
            }
        }
        match vigie_wire::encode(&ops) {
            Ok(frame) if frame.len() + FRAME_OVERHEAD <= MAX_FRAME => Ok(()),
            Ok(frame) => Err(StoreError::Refused(format!(
                "batch of {} bytes exceeds {MAX_FRAME}",
                frame.len() + FRAME_OVERHEAD
            ))),
            Err(e) => Err(StoreError::Refused(e.to_string())),
        }
    }
}

impl Store for MemStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.records().get(key).cloned())
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>) -> Entries<'a> {
        let from = match start {
            Some(s) if s > prefix => s.to_vec(),
            _ => prefix.to_vec(),
        };
        let found: Vec<_> = self
            .records()
            .range(from..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Box::new(found.into_iter())
    }

    fn write(&self, writes: &mut Writes) -> Result<(), StoreError> {
        Self::check(writes)?;
        let mut records = self.records();
        for (k, v) in writes.drain(..) {
            match v {
                Some(v) => records.insert(k, v),
                None => records.remove(&k),
            };
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_escalator_would_refuse_is_refused_whole() {
        let store = MemStore::default();
        let mut ok = vec![(b"a".to_vec(), Some(b"1".to_vec()))];
        store.write(&mut ok).unwrap();
        let big = vec![0u8; MAX_VALUE / 2];
        let mut too_big: Writes = (0..8)
            .map(|i| (format!("k{i}").into_bytes(), Some(big.clone())))
            .collect();
        too_big.push((b"a".to_vec(), None));
        assert!(store.write(&mut too_big).is_err());
        assert_eq!(
            store.get(b"a").unwrap(),
            Some(b"1".to_vec()),
            "nothing applied"
        );
        assert_eq!(store.scan(b"k", None).count(), 0);
        let mut value = vec![(b"v".to_vec(), Some(vec![0; MAX_VALUE + 1]))];
        assert!(store.write(&mut value).is_err());
    }

    #[test]
    fn a_scan_keeps_to_its_prefix_from_its_start() {
        let store = MemStore::default();
        let mut w: Writes = ["a/1", "b/1", "b/2", "b/3", "c/1"]
            .iter()
            .map(|k| (k.as_bytes().to_vec(), Some(Vec::new())))
            .collect();
        store.write(&mut w).unwrap();
        let keys = |start: Option<&[u8]>| -> Vec<Vec<u8>> {
            store.scan(b"b/", start).map(|e| e.unwrap().0).collect()
        };
        assert_eq!(
            keys(None),
            vec![b"b/1".to_vec(), b"b/2".to_vec(), b"b/3".to_vec()]
        );
        assert_eq!(keys(Some(b"b/2")), vec![b"b/2".to_vec(), b"b/3".to_vec()]);
        // A start below the prefix (a key's tail, say) does not narrow it.
        assert_eq!(keys(Some(b"2")).len(), 3);
    }
}
