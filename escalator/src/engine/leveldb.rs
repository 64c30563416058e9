//! The LevelDB engine (rusty-leveldb) with real fdatasync through [`SyncEnv`].
//!
//! Opening first checks every log ([`recovery::check`]). After any failed
//! write or sync (a full disk, an I/O error) rusty-leveldb's memory no
//! longer matches the disk — its memtable holds the failed write, its log
//! buffer unwritten bytes — so the engine drops that instance and, at the
//! next call, reopens the database from disk: the torn tail the failure left
//! is cut and every acknowledged write is back. [`LevelDbEngine::generation`]
//! tells the server which writes of its turn went with the dropped instance.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use rusty_leveldb::{Options, WriteBatch, DB};

use super::faults::Faults;
use super::recovery;
use super::sync_env::{SyncEnv, SyncState};
use super::{leveldb_scan, Engine, EngineError, ScanEntries, ScanLimit, Staging};
use crate::keys::Bounds;
use vigie_wire::escalator::BatchOp;

#[derive(Debug, Clone, Copy)]
pub struct LevelDbOptions {
    /// Memtable size before it is written out as a table; small values force
    /// tables and compactions early (used by tests).
    pub write_buffer_size: usize,
}

/// Upper bound of the blocks a database keeps decoded in memory. rusty-leveldb's
/// default, 4 MiB, is smaller than a few hundred thousand small entries: the
/// profile of the pipelined benchmark showed every other get reading and
/// parsing a table block from the file (`Table::read_block`, `pread`). The
/// cache fills only with blocks actually read.
const BLOCK_CACHE_BYTES: usize = 64 << 20;

impl Default for LevelDbOptions {
    fn default() -> Self {
        Self {
            write_buffer_size: 4 << 20,
        }
    }
}

struct Open {
    db: DB,
    sync: SyncState,
}

pub struct LevelDbEngine {
    dir: PathBuf,
    opts: LevelDbOptions,
    faults: Option<Rc<Faults>>,
    /// None after a failure, until the next call reopens.
    open: Option<Open>,
    generation: u64,
    /// Puts and deletes waiting for [`LevelDbEngine::apply_staged`].
    staged: WriteBatch,
    staged_bytes: usize,
    /// Entries the scans have stepped over (see [`LevelDbEngine::entries_visited`]).
    visited: u64,
}

/// Staged bytes past which a stage applies at once: the batch copies what
/// the received frames already hold, so it must not grow without bound.
const STAGE_BYTES: usize = 1 << 20;

fn ldb(e: rusty_leveldb::Status) -> EngineError {
    EngineError::LevelDb(e.to_string())
}

fn open_db(
    dir: &Path,
    opts: LevelDbOptions,
    faults: Option<Rc<Faults>>,
) -> Result<Open, EngineError> {
    recovery::check(dir)?;
    let (env, sync) = SyncEnv::new(dir, faults);
    let options = Options {
        env: Rc::new(Box::new(env)),
        create_if_missing: true,
        write_buffer_size: opts.write_buffer_size,
        block_cache_capacity_bytes: BLOCK_CACHE_BYTES,
        ..Options::default()
    };
    let db = DB::open(dir, options).map_err(ldb)?;
    sync.sync()?;
    Ok(Open { db, sync })
}

impl LevelDbEngine {
    /// Opens (creating if missing) the database in `dir`.
    pub fn open(dir: &Path, opts: LevelDbOptions) -> Result<Self, EngineError> {
        Self::open_with_faults(dir, opts, None)
    }

    /// Opens with injected I/O faults (crash-point tests).
    pub fn open_with_faults(
        dir: &Path,
        opts: LevelDbOptions,
        faults: Option<Rc<Faults>>,
    ) -> Result<Self, EngineError> {
        let open = open_db(dir, opts, faults.clone())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            opts,
            faults,
            open: Some(open),
            generation: 0,
            staged: WriteBatch::default(),
            staged_bytes: 0,
            visited: 0,
        })
    }

    /// Counts the instances dropped after a failure: a write applied at one
    /// generation and not synced before the next was lost with it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// How many entries this engine's scans have stepped over, forward or
    /// back, since it opened: what a scan cost, whatever the clock says
    /// (a reverse page reads about its page, not its range).
    pub fn entries_visited(&self) -> u64 {
        self.visited
    }

    /// Stages a put (`Some` value) or a delete: the writes of one server
    /// turn go to LevelDB as one batch — one log record, one pass over the
    /// memtable — when the server applies them, before it reads or commits.
    /// Each request's own writes stay whole: the batch lands whole or not.
    pub fn stage(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), EngineError> {
        match value {
            Some(v) => self.staged.put(key, v),
            None => self.staged.delete(key),
        }
        self.staged_bytes += key.len() + value.map_or(0, <[u8]>::len);
        if self.staged_bytes >= STAGE_BYTES {
            return self.apply_staged();
        }
        Ok(())
    }

    /// Writes what was staged as one atomic batch.
    pub fn apply_staged(&mut self) -> Result<(), EngineError> {
        if self.staged.count() == 0 {
            return Ok(());
        }
        let wb = std::mem::take(&mut self.staged);
        self.staged_bytes = 0;
        self.mutate(|o| o.db.write(wb, false).map_err(ldb))
    }

    /// Compacts every key (keys up to 64 bytes of 0xff) down the levels
    /// now: rusty-leveldb has no background thread, it compacts inside the
    /// write or the read that triggers it, so a bulk load leaves that work
    /// to the reads that follow (`vigie bench history --compact`).
    pub fn compact_all(&mut self) -> Result<(), EngineError> {
        self.apply_staged()?;
        self.mutate(|o| o.db.compact_range(b"", &[0xff; 64]).map_err(ldb))
    }

    /// Flushes LevelDB's buffers and closes the database.
    pub fn close(mut self) -> Result<(), EngineError> {
        self.apply_staged()?;
        if let Some(mut o) = self.open.take() {
            o.db.close().map_err(ldb)?;
            o.sync.sync()?;
        }
        Ok(())
    }

    fn ready(&mut self) -> Result<&mut Open, EngineError> {
        if self.open.is_none() {
            let o = open_db(&self.dir, self.opts, self.faults.clone())?;
            tracing::info!(event = "database_reopened", dir = %self.dir.display(), generation = self.generation);
            self.open = Some(o);
        }
        self.open
            .as_mut()
            .ok_or_else(|| EngineError::LevelDb("not open".into()))
    }

    /// Runs a mutation; on failure drops the instance (its memory is no
    /// longer what the disk holds).
    fn mutate<T>(
        &mut self,
        f: impl FnOnce(&mut Open) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let r = f(self.ready()?);
        if let Err(e) = &r {
            if let Some(o) = self.open.take() {
                let why = o.sync.poisoned().unwrap_or_else(|| e.to_string());
                tracing::warn!(event = "database_write_failed", dir = %self.dir.display(), error = %why);
                // Stop every later write of this instance, even on drop.
                o.sync.poison(&why);
            }
            self.generation += 1;
        }
        r
    }
}

impl Engine for LevelDbEngine {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.apply_staged()?;
        Ok(self.ready()?.db.get(key).map(|b| b.to_vec()))
    }

    fn write(&mut self, ops: &[BatchOp]) -> Result<(), EngineError> {
        let mut wb = WriteBatch::default();
        for op in ops {
            match op {
                BatchOp::Put { key, value } => wb.put(key, value),
                BatchOp::Delete { key } => wb.delete(key),
            }
        }
        self.apply_staged()?;
        // One log record per batch: atomic on recovery.
        self.mutate(|o| o.db.write(wb, false).map_err(ldb))
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        self.apply_staged()?;
        self.mutate(|o| o.db.flush().map_err(ldb))
    }

    fn sync(&mut self) -> Result<u32, EngineError> {
        self.apply_staged()?;
        self.mutate(|o| {
            o.db.flush().map_err(ldb)?;
            o.sync.sync()
        })
    }

    fn scan(
        &mut self,
        bounds: &Bounds,
        reverse: bool,
        limit: ScanLimit,
        keys_only: bool,
    ) -> Result<ScanEntries, EngineError> {
        self.apply_staged()?;
        let mut visited = 0;
        let db = &mut self.ready()?.db;
        let out = if reverse {
            leveldb_scan::reverse(db, bounds, limit, keys_only, &mut visited)
        } else {
            leveldb_scan::forward(db, bounds, limit, keys_only, &mut visited).map(|(e, _)| e)
        };
        self.visited += visited;
        out
    }
}

impl Staging for LevelDbEngine {
    fn stage(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), EngineError> {
        LevelDbEngine::stage(self, key, value)
    }

    fn apply_staged(&mut self) -> Result<(), EngineError> {
        LevelDbEngine::apply_staged(self)
    }

    fn generation(&self) -> u64 {
        LevelDbEngine::generation(self)
    }

    fn close(self: Box<Self>) -> Result<(), EngineError> {
        LevelDbEngine::close(*self)
    }
}
