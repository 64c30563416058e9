//! The storage engine trait: what Escalator needs of a key-value store.
//! Every implementation passes the suite in [`conformance`].

pub mod conformance;
pub mod crashpoint;
pub mod faults;
mod leveldb;
pub mod logfile;
mod memory;
pub mod recovery;
mod sync_env;

pub use self::leveldb::{LevelDbEngine, LevelDbOptions};
pub use memory::MemEngine;

use crate::keys::Bounds;
use vigie_wire::escalator::BatchOp;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("leveldb: {0}")]
    LevelDb(String),
    #[error("sync of {path}: {source}")]
    Sync {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// Damage that no crash leaves: valid records follow it.
    #[error(
        "{file}: corrupt at byte {offset} ({reason}), with intact records after it — not the \
         torn tail of a crash; `vigie escalator repair` keeps every intact record"
    )]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
    },
}

/// One page of a scan, keys in scan order.
pub type ScanEntries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// How much one scan call may return.
#[derive(Debug, Clone, Copy)]
pub struct ScanLimit {
    pub entries: usize,
    pub bytes: usize,
}

pub trait Engine {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError>;

    /// Applies all `ops` atomically: once it returns the write is visible,
    /// but it may still sit in the engine's buffers (see `flush`).
    fn write(&mut self, ops: &[BatchOp]) -> Result<(), EngineError>;

    /// Makes every write so far survive a crash of the process (handed to
    /// the OS), not yet a power loss.
    fn flush(&mut self) -> Result<(), EngineError>;

    /// Makes every write so far survive power loss (flushing first). Returns
    /// how many fsync calls it took (0 when nothing was pending).
    fn sync(&mut self) -> Result<u32, EngineError>;

    /// Entries within `bounds`, ascending or descending, at most `limit`
    /// entries and about `limit.bytes` bytes (at least one entry if any).
    fn scan(
        &mut self,
        bounds: &Bounds,
        reverse: bool,
        limit: ScanLimit,
        keys_only: bool,
    ) -> Result<ScanEntries, EngineError>;
}

/// Pushes an entry and says whether the page is full.
pub(crate) fn push_entry(
    out: &mut ScanEntries,
    bytes: &mut usize,
    limit: ScanLimit,
    key: &[u8],
    value: &[u8],
    keys_only: bool,
) -> bool {
    *bytes += key.len() + if keys_only { 0 } else { value.len() };
    out.push((key.to_vec(), (!keys_only).then(|| value.to_vec())));
    out.len() >= limit.entries || *bytes >= limit.bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_engine_conforms() {
        conformance::run_all(&mut || Box::new(MemEngine::default()));
    }

    #[test]
    fn leveldb_engine_conforms() {
        let dirs = std::cell::RefCell::new(Vec::new());
        conformance::run_all(&mut || {
            let dir = tempfile::tempdir().unwrap();
            // A tiny memtable so the suite also runs over tables and compactions.
            let opts = LevelDbOptions {
                write_buffer_size: 16 << 10,
            };
            let e = LevelDbEngine::open(dir.path(), opts).unwrap();
            dirs.borrow_mut().push(dir);
            Box::new(e)
        });
    }

    #[test]
    fn leveldb_reopen_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LevelDbOptions {
            write_buffer_size: 16 << 10,
        };
        let mut model = MemEngine::default();
        {
            let mut e = LevelDbEngine::open(dir.path(), opts).unwrap();
            conformance::matches_model(&mut e, 42, 2_000);
            conformance::matches_model(&mut model, 42, 2_000);
            e.close().unwrap();
        }
        let mut e = LevelDbEngine::open(dir.path(), opts).unwrap();
        let all = Bounds::all();
        let lim = ScanLimit {
            entries: usize::MAX,
            bytes: usize::MAX,
        };
        assert_eq!(
            e.scan(&all, false, lim, false).unwrap(),
            model.scan(&all, false, lim, false).unwrap()
        );
    }
}
