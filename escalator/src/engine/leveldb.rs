//! The LevelDB engine (rusty-leveldb) with real fdatasync through [`SyncEnv`].

use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;

use rusty_leveldb::{LdbIterator, Options, WriteBatch, DB};

use super::sync_env::{SyncEnv, SyncState};
use super::{push_entry, Engine, EngineError, ScanEntries, ScanLimit};
use crate::keys::Bounds;
use vigie_wire::escalator::BatchOp;

#[derive(Debug, Clone, Copy)]
pub struct LevelDbOptions {
    /// Memtable size before it is written out as a table; small values force
    /// tables and compactions early (used by tests).
    pub write_buffer_size: usize,
}

impl Default for LevelDbOptions {
    fn default() -> Self {
        Self {
            write_buffer_size: 4 << 20,
        }
    }
}

pub struct LevelDbEngine {
    db: DB,
    sync: SyncState,
}

fn ldb(e: rusty_leveldb::Status) -> EngineError {
    EngineError::LevelDb(e.to_string())
}

impl LevelDbEngine {
    /// Opens (creating if missing) the database in `dir`.
    pub fn open(dir: &Path, opts: LevelDbOptions) -> Result<Self, EngineError> {
        let (env, sync) = SyncEnv::new(dir);
        let options = Options {
            env: Rc::new(Box::new(env)),
            create_if_missing: true,
            write_buffer_size: opts.write_buffer_size,
            ..Options::default()
        };
        let db = DB::open(dir, options).map_err(ldb)?;
        let mut engine = Self { db, sync };
        engine.sync()?;
        Ok(engine)
    }

    /// Flushes LevelDB's buffers and closes the database.
    pub fn close(mut self) -> Result<(), EngineError> {
        self.db.close().map_err(ldb)?;
        self.sync.sync()?;
        Ok(())
    }
}

impl Engine for LevelDbEngine {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        Ok(self.db.get(key).map(|b| b.to_vec()))
    }

    fn write(&mut self, ops: &[BatchOp]) -> Result<(), EngineError> {
        let mut wb = WriteBatch::default();
        for op in ops {
            match op {
                BatchOp::Put { key, value } => wb.put(key, value),
                BatchOp::Delete { key } => wb.delete(key),
            }
        }
        // One log record per batch: atomic on recovery.
        self.db.write(wb, false).map_err(ldb)
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        self.db.flush().map_err(ldb)
    }

    fn sync(&mut self) -> Result<u32, EngineError> {
        self.flush()?;
        self.sync.sync()
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
        let mut it = self.db.new_iter().map_err(ldb)?;
        it.seek(&bounds.lower);
        let in_range = |k: &[u8]| bounds.upper.as_deref().is_none_or(|u| k < u);
        let mut bytes = 0;
        if reverse {
            // rusty-leveldb's backward iteration (`prev`) can yield deleted
            // keys, so a reverse scan walks forward and keeps the last page.
            let mut tail = VecDeque::new();
            let mut tail_bytes = 0;
            while let Some((k, v)) = it.valid().then(|| it.current()).flatten() {
                if !in_range(&k) {
                    break;
                }
                tail_bytes += k.len() + if keys_only { 0 } else { v.len() };
                tail.push_back((k, v));
                while tail.len() > limit.entries || (tail.len() > 1 && tail_bytes > limit.bytes) {
                    if let Some((k, v)) = tail.pop_front() {
                        tail_bytes -= k.len() + if keys_only { 0 } else { v.len() };
                    }
                }
                if !it.advance() {
                    break;
                }
            }
            for (k, v) in tail.iter().rev() {
                push_entry(&mut out, &mut bytes, limit, k, v, keys_only);
            }
        } else {
            while let Some((k, v)) = it.valid().then(|| it.current()).flatten() {
                if !in_range(&k) || push_entry(&mut out, &mut bytes, limit, &k, &v, keys_only) {
                    break;
                }
                if !it.advance() {
                    break;
                }
            }
        }
        Ok(out)
    }
}
