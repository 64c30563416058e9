//! An in-memory engine: the reference model the LevelDB engine is checked
//! against in the conformance suite.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{push_entry, Engine, EngineError, ScanEntries, ScanLimit};
use crate::keys::Bounds;
use vigie_wire::escalator::BatchOp;

#[derive(Debug, Default)]
pub struct MemEngine {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
    unsynced: bool,
}

impl Engine for MemEngine {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.map.get(key).cloned())
    }

    fn write(&mut self, ops: &[BatchOp]) -> Result<(), EngineError> {
        for op in ops {
            match op {
                BatchOp::Put { key, value } => {
                    self.map.insert(key.clone(), value.clone());
                }
                BatchOp::Delete { key } => {
                    self.map.remove(key);
                }
            }
        }
        self.unsynced = true;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        Ok(())
    }

    fn sync(&mut self) -> Result<u32, EngineError> {
        Ok(u32::from(std::mem::take(&mut self.unsynced)))
    }

    fn scan(
        &mut self,
        bounds: &Bounds,
        reverse: bool,
        limit: ScanLimit,
        keys_only: bool,
    ) -> Result<ScanEntries, EngineError> {
        let mut out = Vec::new();
        if bounds.is_empty() {
            return Ok(out);
        }
        let upper = match &bounds.upper {
            Some(u) => Bound::Excluded(u.clone()),
            None => Bound::Unbounded,
        };
        let range = self
            .map
            .range((Bound::Included(bounds.lower.clone()), upper));
        let mut bytes = 0;
        let iter: Box<dyn Iterator<Item = _>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        for (k, v) in iter {
            if push_entry(&mut out, &mut bytes, limit, k, v, keys_only) {
                break;
            }
        }
        Ok(out)
    }
}
