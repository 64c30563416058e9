//! The storage engine trait: what Escalator needs of a key-value store.
//! Every implementation passes the conformance and crash-point suites of
//! `vigie-escalator-tests`.

mod etcd;
pub mod faults;
mod leveldb;
mod leveldb_scan;
pub mod logfile;
mod memory;
pub mod recovery;
mod row_cache;
mod sync_env;

pub use self::etcd::{Election, EtcdEngine, EtcdOptions, Fence, Leader, TooLarge, TxnLimits};
pub use self::leveldb::{LevelDbEngine, LevelDbOptions};
pub use memory::MemEngine;
pub use row_cache::{row_cost, RowCache, ROW_CACHE_BYTES};

pub use crate::keys::{successor, Bounds};
use vigie_wire::escalator::BatchOp;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("leveldb: {0}")]
    LevelDb(String),
    #[error("etcd: {0}")]
    Etcd(String),
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// A fenced write after the fence's lease lost its key: this tower is
    /// no longer the active one.
    #[error("etcd refused the write: {key:?} is no longer held by lease {lease:x} (this tower was deposed)")]
    Fenced { key: String, lease: i64 },
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

/// What the server needs of an engine beyond [`Engine`]: a turn's single
/// puts and deletes staged and applied together, and a generation that
/// moves when writes it had staged or applied may have been lost.
pub trait Staging: Engine {
    /// Stages a put (`Some` value) or a delete.
    fn stage(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), EngineError>;
    /// Writes what was staged.
    fn apply_staged(&mut self) -> Result<(), EngineError>;
    /// Writes answered at one generation and not committed before the
    /// next may be lost: their requests get a `Storage` error.
    fn generation(&self) -> u64;
    /// Writes what was staged and lets go of the database.
    fn close(self: Box<Self>) -> Result<(), EngineError>;
}
