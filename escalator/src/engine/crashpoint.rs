//! Crash-point testing of the LevelDB engine, as SQLite's and sled's crash
//! tests do: a workload runs once to count its write(2) and fdatasync calls,
//! then once per call N and fault mode ([`FaultMode`]) with that call failed,
//! cut short, or turned into a kill. After each run the database is reopened
//! without faults and checked against the model:
//!
//! - every acknowledged write is there (a write is acknowledged when it and
//!   its turn's flush or sync succeeded — what the server replies Ok to);
//! - the writes not acknowledged are there as a prefix of whole writes: a
//!   batch is all or nothing, nothing is half-visible;
//! - a short write fails nothing;
//! - a write acknowledged after the reopen survives the next reopen (a torn
//!   tail must not swallow it).
//!
//! Turns mirror the server's: a few writes, then one flush (non-durable) or
//! sync (durable); a kill is a process crash, so flushed writes count too.

use std::collections::BTreeMap;
use std::path::Path;

use super::faults::{FaultMode, FaultPoint, Faults};
use super::{recovery, Engine, LevelDbEngine, LevelDbOptions, ScanLimit};
use crate::keys::Bounds;
use vigie_wire::escalator::BatchOp;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// One turn of the workload.
#[derive(Debug, Clone)]
pub struct Turn {
    pub writes: Vec<Vec<BatchOp>>,
    pub durable: bool,
}

/// A deterministic workload of puts, deletes and batches over few keys,
/// with values from a few bytes to more than a 32 KiB log block.
pub fn workload(seed: u64, writes: usize) -> Vec<Turn> {
    let mut rng = SplitMix(seed);
    let mut turns = Vec::new();
    let mut n = 0;
    while n < writes {
        let k = (1 + rng.below(4) as usize).min(writes - n);
        let mut turn = Turn {
            writes: Vec::new(),
            durable: rng.below(3) > 0,
        };
        for _ in 0..k {
            n += 1;
            let ops = if rng.below(4) == 0 {
                2 + rng.below(5)
            } else {
                1
            };
            let batch = (0..ops)
                .map(|j| {
                    let key = format!("k{:02}", rng.below(24)).into_bytes();
                    if rng.below(6) == 0 {
                        BatchOp::Delete { key }
                    } else {
                        let len = match rng.below(10) {
                            0 => 33_000 + rng.below(8_000) as usize,
                            1..=3 => 1_000 + rng.below(6_000) as usize,
                            _ => rng.below(200) as usize,
                        };
                        let mut value = format!("w{n}.{j}:").into_bytes();
                        value.resize(value.len() + len, b'a' + (n % 26) as u8);
                        BatchOp::Put { key, value }
                    }
                })
                .collect();
            turn.writes.push(batch);
        }
        turns.push(turn);
    }
    turns
}

struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Small memtables: the workload also crosses log switches, table writes,
/// compactions and manifest updates.
pub const OPTIONS: LevelDbOptions = LevelDbOptions {
    write_buffer_size: 24 << 10,
};

fn apply(model: &mut Model, ops: &[BatchOp]) {
    for op in ops {
        match op {
            BatchOp::Put { key, value } => {
                model.insert(key.clone(), value.clone());
            }
            BatchOp::Delete { key } => {
                model.remove(key);
            }
        }
    }
}

fn contents(e: &mut LevelDbEngine) -> Result<Model, String> {
    let all = ScanLimit {
        entries: usize::MAX,
        bytes: usize::MAX,
    };
    let rows = e
        .scan(&Bounds::all(), false, all, false)
        .map_err(|e| format!("scan: {e}"))?;
    Ok(rows
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

/// Which prefix of the unacknowledged writes the database holds over
/// `base`, if any.
fn matching_prefix(found: &Model, base: &Model, maybe: &[Vec<BatchOp>]) -> Option<usize> {
    let mut m = base.clone();
    if &m == found {
        return Some(0);
    }
    for (i, w) in maybe.iter().enumerate() {
        apply(&mut m, w);
        if &m == found {
            return Some(i + 1);
        }
    }
    None
}

fn describe(found: &Model, want: &Model) -> String {
    let missing: Vec<_> = want
        .iter()
        .filter(|(k, v)| found.get(*k) != Some(v))
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .take(5)
        .collect();
    let extra: Vec<_> = found
        .iter()
        .filter(|(k, v)| want.get(*k) != Some(v))
        .map(|(k, v)| {
            format!(
                "{}={}",
                String::from_utf8_lossy(k),
                String::from_utf8_lossy(&v[..v.len().min(12)])
            )
        })
        .take(5)
        .collect();
    format!("keys differing from the acknowledged model: {missing:?}; found instead: {extra:?}")
}

/// What one crash-point run saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunReport {
    /// Write and sync calls the run made.
    pub ops: u64,
    pub acknowledged: usize,
    /// Unacknowledged writes found after the reopen.
    pub unacked_present: usize,
    pub tails_cut: usize,
}

/// Runs `turns` in `dir` (fresh) with `point` injected (none: count only),
/// reopens and checks the model. Err names what broke.
pub fn run_point(
    dir: &Path,
    turns: &[Turn],
    point: Option<FaultPoint>,
) -> Result<RunReport, String> {
    let faults = point.map_or_else(Faults::counting, Faults::at);
    let mut report = RunReport::default();
    let mut confirmed = Model::new();
    let mut maybe: Vec<Vec<BatchOp>> = Vec::new();
    let short = point.is_some_and(|p| p.mode == FaultMode::Short);
    match LevelDbEngine::open_with_faults(dir, OPTIONS, Some(faults.clone())) {
        Err(e) if short => return Err(format!("open failed on a short write: {e}")),
        Err(_) => {}
        Ok(mut engine) => {
            for turn in turns {
                if faults.dead() {
                    break;
                }
                if !maybe.is_empty() {
                    // An earlier turn failed: the engine reopens now; it must
                    // hold a prefix of that turn's writes, whole.
                    let found = contents(&mut engine)?;
                    let k = matching_prefix(&found, &confirmed, &maybe).ok_or_else(|| {
                        format!("after a failed turn: {}", describe(&found, &confirmed))
                    })?;
                    report.unacked_present += k;
                    maybe.drain(..k).for_each(|w| apply(&mut confirmed, &w));
                    maybe.clear();
                }
                let gen = engine.generation();
                let mut done = Vec::new();
                let mut ok = true;
                for w in &turn.writes {
                    done.push(w.clone());
                    if engine.write(w).is_err() {
                        ok = false;
                        break;
                    }
                }
                ok =
                    ok && if turn.durable {
                        engine.sync().is_ok()
                    } else {
                        engine.flush().is_ok()
                    } && engine.generation() == gen;
                if ok {
                    report.acknowledged += done.len();
                    done.iter().for_each(|w| apply(&mut confirmed, w));
                } else if short {
                    return Err("a short write failed a turn".into());
                } else {
                    maybe = done;
                }
            }
            // The process ends here without closing: a crash.
            drop(engine);
        }
    }
    report.ops = faults.ops();
    report.tails_cut = recovery::check(dir)
        .map_err(|e| format!("reopen refused: {e}"))?
        .len();
    let mut engine = LevelDbEngine::open(dir, OPTIONS).map_err(|e| format!("reopen: {e}"))?;
    let found = contents(&mut engine)?;
    let k = matching_prefix(&found, &confirmed, &maybe)
        .ok_or_else(|| format!("after reopen: {}", describe(&found, &confirmed)))?;
    report.unacked_present += k;
    maybe.drain(..k).for_each(|w| apply(&mut confirmed, &w));
    // A durable write after the reopen, then a crash: it must survive.
    let marker = vec![BatchOp::Put {
        key: b"after-reopen".to_vec(),
        value: b"acknowledged".to_vec(),
    }];
    engine
        .write(&marker)
        .and_then(|()| engine.sync())
        .map_err(|e| format!("write after reopen: {e}"))?;
    drop(engine);
    apply(&mut confirmed, &marker);
    let mut engine =
        LevelDbEngine::open(dir, OPTIONS).map_err(|e| format!("second reopen: {e}"))?;
    let found = contents(&mut engine)?;
    if found != confirmed {
        return Err(format!(
            "after the second reopen: {}",
            describe(&found, &confirmed)
        ));
    }
    Ok(report)
}

/// The totals of a sweep.
#[derive(Debug, Default, Clone)]
pub struct Sweep {
    pub ops: u64,
    pub runs: u64,
    pub acknowledged: u64,
    pub unacked_present: u64,
    pub tails_cut: u64,
    /// Each failed run: fault point and what broke.
    pub failures: Vec<(FaultPoint, String)>,
}

/// Runs the workload under every fault point, each in a fresh directory
/// under `scratch`. `every` samples one call in that many (1: all).
pub fn sweep(
    scratch: &Path,
    turns: &[Turn],
    modes: &[FaultMode],
    every: u64,
) -> Result<Sweep, String> {
    let fresh = |name: &str| -> Result<std::path::PathBuf, String> {
        let d = scratch.join(name);
        if d.exists() {
            std::fs::remove_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        Ok(d)
    };
    let base = run_point(&fresh("count")?, turns, None)?;
    let mut s = Sweep {
        ops: base.ops,
        ..Sweep::default()
    };
    for at in (1..=base.ops).step_by(every.max(1) as usize) {
        for &mode in modes {
            let point = FaultPoint { at, mode };
            let dir = fresh(&format!("{mode:?}-{at}"))?;
            s.runs += 1;
            // A panic in the engine is a failure of the run, not of the sweep.
            let run = std::panic::catch_unwind(|| run_point(&dir, turns, Some(point)))
                .unwrap_or_else(|p| {
                    let what = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                        .unwrap_or_default();
                    Err(format!("panic: {what}"))
                });
            match run {
                Ok(r) => {
                    s.acknowledged += r.acknowledged as u64;
                    s.unacked_present += r.unacked_present as u64;
                    s.tails_cut += r.tails_cut as u64;
                    let _ = std::fs::remove_dir_all(&dir);
                }
                Err(e) => s.failures.push((point, e)),
            }
        }
    }
    Ok(s)
}
