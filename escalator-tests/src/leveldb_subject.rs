//! The LevelDB engine as the server runs it (behind its row cache) as a
//! crash-point [`Subject`]: faults at its write(2) and fdatasync calls
//! (through `SyncEnv`), a torn tail cut by `recovery` before the reopen.

use std::path::PathBuf;
use std::rc::Rc;

use vigie_escalator::engine::faults::{FaultPoint, Faults};
use vigie_escalator::engine::{
    recovery, LevelDbEngine, LevelDbOptions, RowCache, Staging, ROW_CACHE_BYTES,
};

use crate::crashpoint::Subject;

/// Small memtables: the workload also crosses log switches, table writes,
/// compactions and manifest updates.
pub const OPTIONS: LevelDbOptions = LevelDbOptions {
    write_buffer_size: 24 << 10,
};

/// A LevelDB database in `dir` (fresh).
#[derive(Debug)]
pub struct LevelDbSubject {
    dir: PathBuf,
    faults: Rc<Faults>,
}

impl LevelDbSubject {
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            faults: Faults::counting(),
        }
    }
}

impl Drop for LevelDbSubject {
    fn drop(&mut self) {
        // Runs leave nothing behind, whatever they found.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Subject for LevelDbSubject {
    type Engine = RowCache<LevelDbEngine>;

    fn open(&mut self, point: Option<FaultPoint>) -> Result<Self::Engine, String> {
        self.faults = point.map_or_else(Faults::counting, Faults::at);
        LevelDbEngine::open_with_faults(&self.dir, OPTIONS, Some(self.faults.clone()))
            .map(|e| RowCache::new(e, ROW_CACHE_BYTES))
            .map_err(|e| e.to_string())
    }

    fn dead(&self) -> bool {
        self.faults.dead()
    }

    fn ops(&self) -> u64 {
        self.faults.ops()
    }

    fn epoch(engine: &Self::Engine) -> u64 {
        engine.generation()
    }

    fn short_is_retried(&self) -> bool {
        true
    }

    fn recover(&mut self) -> Result<usize, String> {
        recovery::check(&self.dir)
            .map(|cuts| cuts.len())
            .map_err(|e| format!("reopen refused: {e}"))
    }

    fn reopen(&mut self) -> Result<Self::Engine, String> {
        LevelDbEngine::open(&self.dir, OPTIONS)
            .map(|e| RowCache::new(e, ROW_CACHE_BYTES))
            .map_err(|e| e.to_string())
    }
}
