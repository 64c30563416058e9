//! Every engine passes the one conformance suite: the in-memory model,
//! LevelDB (over a tiny memtable, so tables and compactions are exercised),
//! LevelDB behind the row cache the server puts in front of it (with a
//! budget small enough that rows are evicted and read again) and LevelDB
//! reopened.

use std::cell::RefCell;

use vigie_escalator::engine::{
    row_cost, Bounds, Engine, LevelDbEngine, LevelDbOptions, MemEngine, RowCache, ScanLimit,
};
use vigie_escalator_tests::conformance;
use vigie_wire::escalator::BatchOp;

/// A tiny memtable so the suite also runs over tables and compactions.
const SMALL: LevelDbOptions = LevelDbOptions {
    write_buffer_size: 16 << 10,
};

#[test]
fn memory_engine_conforms() {
    conformance::run_all(&mut || Box::new(MemEngine::default()));
}

/// The suite over fresh LevelDB databases, each as `wrap` makes it.
fn leveldb_conforms(wrap: fn(LevelDbEngine) -> Box<dyn Engine>) {
    let dirs = RefCell::new(Vec::new());
    conformance::run_all(&mut || {
        let dir = tempfile::tempdir().expect("tempdir");
        let e = LevelDbEngine::open(dir.path(), SMALL).expect("open");
        dirs.borrow_mut().push(dir);
        wrap(e)
    });
}

#[test]
fn leveldb_engine_conforms() {
    leveldb_conforms(|e| Box::new(e));
}

#[test]
fn row_cached_leveldb_engine_conforms() {
    leveldb_conforms(|e| Box::new(RowCache::new(e, 64 << 10)));
}

/// The cache keeps about its budget: the most recent rows, the others
/// read again from LevelDB; a value too large for it is read from
/// LevelDB every time rather than evicting the rows it holds.
#[test]
fn the_row_cache_keeps_its_budget() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let budget = 20 * row_cost(b"k0", Some(&[0; 100]));
    let mut c = RowCache::new(LevelDbEngine::open(dir.path(), SMALL)?, budget);
    for i in 0..100u8 {
        c.write(&[BatchOp::Put {
            key: vec![b'k', i],
            value: vec![i; 100],
        }])?;
    }
    assert_eq!(c.len(), 20, "the twenty most recent rows");
    assert_eq!(c.get(&[b'k', 0])?, Some(vec![0; 100]), "read from LevelDB");
    assert_eq!(c.len(), 20);
    let big = vec![7; budget / 2];
    c.write(&[BatchOp::Put {
        key: b"big".to_vec(),
        value: big.clone(),
    }])?;
    assert_eq!(c.get(b"big")?, Some(big), "read from LevelDB");
    assert_eq!(c.len(), 20, "no row evicted for it");
    // Overwritten small, it is kept again.
    c.write(&[BatchOp::Put {
        key: b"big".to_vec(),
        value: b"small".to_vec(),
    }])?;
    assert_eq!(c.get(b"big")?, Some(b"small".to_vec()));
    Ok(())
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

/// A reverse page steps over about its page, not its range: 40,000 keys
/// in tables, recent deletes and overwrites in the memtable, and a page of
/// 10 from the end reads well under a thousand entries (the range walked
/// forward would read 40,000).
#[test]
fn leveldb_reverse_page_costs_its_page() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut e = LevelDbEngine::open(dir.path(), LevelDbOptions::default())?;
    for chunk in (0..40_000u32).collect::<Vec<_>>().chunks(1_000) {
        let ops: Vec<_> = chunk
            .iter()
            .map(|i| BatchOp::Put {
                key: format!("audit/{i:08}").into_bytes(),
                value: vec![b'v'; 100],
            })
            .collect();
        e.write(&ops)?;
    }
    e.write(&[BatchOp::Put {
        key: b"change/1".to_vec(),
        value: b"x".to_vec(),
    }])?;
    for i in (39_900..40_000u32).step_by(2) {
        e.write(&[BatchOp::Delete {
            key: format!("audit/{i:08}").into_bytes(),
        }])?;
    }
    let page = ScanLimit {
        entries: 10,
        bytes: usize::MAX,
    };
    let audit = Bounds {
        lower: b"audit/".to_vec(),
        upper: Some(b"audit0".to_vec()),
    };
    let before = e.entries_visited();
    let got = e.scan(&audit, true, page, true)?;
    let visited = e.entries_visited() - before;
    let keys: Vec<_> = got
        .iter()
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    let want: Vec<_> = (0..10u32)
        .map(|j| format!("audit/{:08}", 39_999 - 2 * j))
        .collect();
    assert_eq!(keys, want, "the newest live keys, newest first");
    assert!(
        visited < 1_000,
        "a reverse page of 10 stepped over {visited} entries"
    );
    Ok(())
}
