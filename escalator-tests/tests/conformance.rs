//! Every engine passes the one conformance suite: the in-memory model,
//! LevelDB (over a tiny memtable, so tables and compactions are exercised)
//! and LevelDB reopened.

use std::cell::RefCell;

use vigie_escalator::engine::{
    Bounds, Engine, LevelDbEngine, LevelDbOptions, MemEngine, ScanLimit,
};
use vigie_escalator_tests::conformance;

/// A tiny memtable so the suite also runs over tables and compactions.
const SMALL: LevelDbOptions = LevelDbOptions {
    write_buffer_size: 16 << 10,
};

#[test]
fn memory_engine_conforms() {
    conformance::run_all(&mut || Box::new(MemEngine::default()));
}

#[test]
fn leveldb_engine_conforms() {
    let dirs = RefCell::new(Vec::new());
    conformance::run_all(&mut || {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = LevelDbEngine::open(dir.path(), SMALL).expect("open");
        dirs.borrow_mut().push(dir);
        Box::new(e)
    });
}

#[test]
fn leveldb_reopen_keeps_everything() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut model = MemEngine::default();
    {
        let mut e = LevelDbEngine::open(dir.path(), SMALL)?;
        conformance::matches_model(&mut e, 42, 2_000);
        conformance::matches_model(&mut model, 42, 2_000);
        e.close()?;
    }
    let mut e = LevelDbEngine::open(dir.path(), SMALL)?;
    let all = Bounds::all();
    let lim = ScanLimit {
        entries: usize::MAX,
        bytes: usize::MAX,
    };
    assert_eq!(
        e.scan(&all, false, lim, false)?,
        model.scan(&all, false, lim, false)?
    );
    Ok(())
}
