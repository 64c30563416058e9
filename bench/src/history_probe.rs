//! What `vigie bench history` measures to explain its figures rather than
//! guess: whether LevelDB compacted during a sample (its table files
//! changed: rusty-leveldb has no background thread, it compacts inside the
//! write or the read that triggers it — a `get` that consulted more than
//! one table too often), what a start's reads of the last finished changes
//! cost straight from Escalator, and a whole compaction of the seeded
//! database before the referee starts (`--compact`).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use vigie_escalator::Database;

/// The database's table files: a set that changes when LevelDB compacts.
pub fn tables(db_dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(db_dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".ldb") || n.ends_with(".sst"))
                .collect()
        })
        .unwrap_or_default()
}

/// A timed sample, and whether LevelDB compacted while it ran.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    pub took: Duration,
    pub compacted: bool,
    /// How long this process's threads (escalator, referee, plugs, the
    /// bench) waited for a CPU meanwhile, runnable but not running, in
    /// ms: what the machine's other work held them back.
    pub waited_ms: u64,
}

/// This process's threads' total wait for a CPU so far, in ms.
pub fn waited_ms() -> u64 {
    crate::tower::sched_ms(std::process::id())[1]
}

/// Times a sample that started at `t0`, with `before` the tables and
/// `wait0` the wait then.
pub fn ended(db_dir: &Path, t0: Instant, before: &BTreeSet<String>, wait0: u64) -> Sample {
    Sample {
        took: t0.elapsed(),
        compacted: tables(db_dir) != *before,
        waited_ms: waited_ms().saturating_sub(wait0),
    }
}

/// Runs `f`, timed, watching `db_dir`'s tables.
pub fn sample<T>(
    db_dir: &Path,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(T, Sample)> {
    let before = tables(db_dir);
    let wait0 = waited_ms();
    let t0 = Instant::now();
    let v = f()?;
    Ok((v, ended(db_dir, t0, &before, wait0)))
}

/// One line on the slow samples of a figure: how many, and how many ran
/// while LevelDB compacted.
pub fn slow_line(name: &str, samples: &[Sample], over: Duration) -> String {
    let slow: Vec<(usize, u64)> = (0..samples.len())
        .filter(|i| samples[*i].took > over)
        .map(|i| (i, samples[i].waited_ms))
        .collect();
    let during = slow.iter().filter(|(i, _)| samples[*i].compacted).count();
    let all_during = samples.iter().filter(|s| s.compacted).count();
    let worst = samples.iter().map(|s| s.took).max().unwrap_or_default();
    format!(
        "{name}: {} of {} samples over {over:?} ((sample, ms its threads waited for a CPU): \
         {:?}; {during} of them while LevelDB compacted); LevelDB compacted during \
         {all_during} samples; worst {worst:.2?}",
        slow.len(),
        samples.len(),
        &slow[..slow.len().min(12)]
    )
}

/// What a start's reads of finished changes cost, straight from Escalator.
#[derive(Debug, Default, Clone, Copy)]
pub struct Reads {
    /// Change records read.
    pub n: usize,
    /// The scan of their `done/` entries.
    pub scanned: Duration,
    /// Their records, one get after another.
    pub gets: Duration,
    /// The same, pipelined (`get_many`, 128 in flight).
    pub pipelined: Duration,
}

/// What a start reads of finished changes, straight from Escalator: the
/// last `recent` entries of `done/` and each one's change record.
pub fn recent_reads(db: &Database, next_seq: u64, recent: u64) -> anyhow::Result<Reads> {
    let t0 = Instant::now();
    let from = format!("done/{:020}", next_seq.saturating_sub(recent));
    let spec = vigie_escalator::RangeSpec {
        start: Some(from.into_bytes()),
        prefix: Some(b"done/".to_vec()),
        ..Default::default()
    };
    let mut keys = Vec::new();
    for e in db.iter(spec) {
        let id = e?.value.unwrap_or_default();
        keys.push([b"change/".as_slice(), &id].concat());
    }
    let scanned = t0.elapsed();
    let one_by_one = keys
        .iter()
        .map(|k| db.get(k))
        .collect::<Result<Vec<_>, _>>()?;
    let gets = t0.elapsed() - scanned;
    let t1 = Instant::now();
    let pipelined = db.get_many(&keys, 128)?;
    anyhow::ensure!(
        one_by_one == pipelined && pipelined.iter().all(Option::is_some),
        "every change record, both ways"
    );
    Ok(Reads {
        n: keys.len(),
        scanned,
        gets,
        pipelined: t1.elapsed(),
    })
}

/// Compacts the whole database in `db_dir` (Escalator stopped), as a
/// tower whose history accrued over time would have it.
pub fn compact_all(db_dir: &Path) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let mut e = vigie_escalator::engine::LevelDbEngine::open(db_dir, Default::default())?;
    e.compact_all()?;
    e.close()?;
    Ok(t0.elapsed())
}
