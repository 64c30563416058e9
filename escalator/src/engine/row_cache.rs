//! Recently written and read values kept in memory in front of an engine.
//!
//! A LevelDB get finds its key by decoding and binary-searching a table
//! block, varint by varint, then copies the value out: the profile of the
//! pipelined benchmark put rusty-leveldb's `get` at a third of the server's
//! time even with every block cached (BENCHMARKS.md, issue 23, item 3). A
//! hash lookup answers the keys the tower just wrote or read — its hot set
//! (hosts, queued changes, sessions) — and the rest go to the engine.
//!
//! The cache holds no write the engine does not hold: it notes a put or a
//! delete only once the engine took it, and forgets everything when the
//! engine failed a call or dropped its instance (its generation moved), so
//! a write lost with an instance is never read back from here.

use lru::LruCache;
use vigie_wire::escalator::BatchOp;

use super::{Bounds, Engine, EngineError, ScanEntries, ScanLimit, Staging};

/// What a cached row costs beyond its key and value: two vectors, the
/// list node and the table's slot.
const ROW_OVERHEAD: usize = 112;

pub struct RowCache<E> {
    inner: E,
    /// A key's value, or `None`: known absent.
    rows: LruCache<Vec<u8>, Option<Vec<u8>>>,
    bytes: usize,
    budget: usize,
    generation: u64,
}

/// What a row counts against the budget.
pub fn row_cost(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + ROW_OVERHEAD
}

/// A row dearer than this share of the budget is not kept: noting it
/// would evict most of the others for one value.
const LARGEST_SHARE: usize = 16;

impl<E: Staging> RowCache<E> {
    /// `inner` behind a cache of at most about `budget` bytes.
    pub fn new(inner: E, budget: usize) -> Self {
        let generation = inner.generation();
        Self {
            inner,
            rows: LruCache::unbounded(),
            bytes: 0,
            budget,
            generation,
        }
    }

    /// Rows held now (tests, statistics).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Passes an engine result on; forgets every row after a failure or a
    /// dropped instance.
    fn settle<T>(&mut self, r: Result<T, EngineError>) -> Result<T, EngineError> {
        let generation = self.inner.generation();
        if r.is_err() || generation != self.generation {
            self.rows.clear();
            self.bytes = 0;
            self.generation = generation;
        }
        r
    }

    /// Notes what the engine now holds for `key`.
    fn note(&mut self, key: &[u8], value: Option<&[u8]>) {
        if row_cost(key, value) > self.budget / LARGEST_SHARE {
            if let Some(old) = self.rows.pop(key) {
                self.bytes -= row_cost(key, old.as_deref());
            }
            return;
        }
        if let Some(row) = self.rows.get_mut(key) {
            self.bytes -= row_cost(key, row.as_deref());
            match (row.as_mut(), value) {
                // Reuses the row's buffer: an overwrite allocates nothing.
                (Some(buf), Some(v)) => {
                    buf.clear();
                    buf.extend_from_slice(v);
                }
                _ => *row = value.map(<[u8]>::to_vec),
            }
        } else {
            self.rows.put(key.to_vec(), value.map(<[u8]>::to_vec));
        }
        self.bytes += row_cost(key, value);
        while self.bytes > self.budget {
            let Some((k, v)) = self.rows.pop_lru() else {
                self.bytes = 0;
                break;
            };
            self.bytes -= row_cost(&k, v.as_deref());
        }
    }
}

impl<E: Staging> Engine for RowCache<E> {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        if let Some(row) = self.rows.get(key) {
            return Ok(row.clone());
        }
        let r = self.inner.get(key);
        let value = self.settle(r)?;
        self.note(key, value.as_deref());
        Ok(value)
    }

    fn write(&mut self, ops: &[BatchOp]) -> Result<(), EngineError> {
        let r = self.inner.write(ops);
        self.settle(r)?;
        for op in ops {
            match op {
                BatchOp::Put { key, value } => self.note(key, Some(value)),
                BatchOp::Delete { key } => self.note(key, None),
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        let r = self.inner.flush();
        self.settle(r)
    }

    fn sync(&mut self) -> Result<u32, EngineError> {
        let r = self.inner.sync();
        self.settle(r)
    }

    fn scan(
        &mut self,
        bounds: &Bounds,
        reverse: bool,
        limit: ScanLimit,
        keys_only: bool,
    ) -> Result<ScanEntries, EngineError> {
        let r = self.inner.scan(bounds, reverse, limit, keys_only);
        self.settle(r)
    }
}

impl<E: Staging> Staging for RowCache<E> {
    fn stage(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), EngineError> {
        let r = self.inner.stage(key, value);
        self.settle(r)?;
        // Staged writes are what a get sees (it applies them first).
        self.note(key, value);
        Ok(())
    }

    fn apply_staged(&mut self) -> Result<(), EngineError> {
        let r = self.inner.apply_staged();
        self.settle(r)
    }

    fn generation(&self) -> u64 {
        self.inner.generation()
    }

    fn close(self: Box<Self>) -> Result<(), EngineError> {
        Box::new(self.inner).close()
    }
}

/// The row cache's budget per database, beside LevelDB's 64 MiB of
/// blocks: a few hundred thousand small rows.
pub const ROW_CACHE_BYTES: usize = 32 << 20;
