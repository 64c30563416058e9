//! Crash-point testing of a storage engine, as SQLite's and sled's crash
//! tests do: a workload runs once to count the engine's faultable calls
//! (LevelDB: write(2) and fdatasync; etcd: requests), then once per call N
//! and fault mode ([`FaultMode`]) with that call failed, cut short, or
//! turned into a kill — what each means is the [`Subject`]'s (see
//! `leveldb_subject` and `etcd_subject`). After each run the store is
//! recovered, reopened without faults and checked against the model:
//!
//! - every acknowledged write is there (a write is acknowledged when it and
//!   its turn's flush or sync succeeded — what the server replies Ok to);
//! - the writes not acknowledged are there as a prefix of whole writes: a
//!   batch is all or nothing, nothing is half-visible;
//! - where the subject says so, a short write fails nothing;
//! - a write acknowledged after the reopen survives the next reopen (a torn
//!   tail must not swallow it).
//!
//! Turns mirror the server's: a few writes, then one flush (non-durable) or
//! sync (durable); a kill is a process crash, so flushed writes count too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use vigie_escalator::engine::faults::{FaultMode, FaultPoint};
use vigie_escalator::engine::{Bounds, Engine, ScanLimit};
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

fn contents(e: &mut dyn Engine) -> Result<Model, String> {
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

/// A store the sweep crashes: how a run opens it with a fault injected,
/// and how it comes back after the crash.
pub trait Subject {
    type Engine: Engine;
    /// Opens the (fresh) store with `point` injected; `None` only counts.
    fn open(&mut self, point: Option<FaultPoint>) -> Result<Self::Engine, String>;
    /// Whether the injected fault stopped all I/O: the run writes no more.
    fn dead(&self) -> bool;
    /// Faultable calls so far.
    fn ops(&self) -> u64;
    /// Changes when the engine lost writes it had answered Ok to (LevelDB's
    /// generation): a turn that saw it move is not acknowledged.
    fn epoch(engine: &Self::Engine) -> u64;
    /// Whether a short call must fail nothing (a retried write(2)).
    fn short_is_retried(&self) -> bool;
    /// The crash and what follows it, before the reopen: returns how many
    /// torn tails were cut.
    fn recover(&mut self) -> Result<usize, String>;
    /// Opens the store again, without faults.
    fn reopen(&mut self) -> Result<Self::Engine, String>;
}

/// What one crash-point run saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunReport {
    /// Faultable calls the run made.
    pub ops: u64,
    pub acknowledged: usize,
    /// Unacknowledged writes found after the reopen.
    pub unacked_present: usize,
    pub tails_cut: usize,
}

/// What the writes of a run left: acknowledged (`confirmed`) and maybe.
#[derive(Default)]
struct Ledger {
    confirmed: Model,
    maybe: Vec<Vec<BatchOp>>,
    report: RunReport,
}

impl Ledger {
    /// The store must hold the confirmed model plus a prefix of the maybe
    /// writes, whole; that prefix becomes confirmed.
    fn settle(&mut self, e: &mut dyn Engine, when: &str) -> Result<(), String> {
        let found = contents(e)?;
        let k = matching_prefix(&found, &self.confirmed, &self.maybe)
            .ok_or_else(|| format!("{when}: {}", describe(&found, &self.confirmed)))?;
        self.report.unacked_present += k;
        let kept: Vec<_> = self.maybe.drain(..).take(k).collect();
        kept.iter().for_each(|w| apply(&mut self.confirmed, w));
        Ok(())
    }
}

/// Runs the turns with the subject's fault; stops at a death. Err when a
/// short call failed a turn of a subject that retries them.
fn run_turns<S: Subject>(
    subject: &S,
    engine: &mut S::Engine,
    turns: &[Turn],
    short: bool,
    ledger: &mut Ledger,
) -> Result<(), String> {
    for turn in turns {
        if subject.dead() {
            break;
        }
        if !ledger.maybe.is_empty() {
            // An earlier turn failed: it must have left a prefix of its
            // writes, whole.
            ledger.settle(engine, "after a failed turn")?;
        }
        let epoch = S::epoch(engine);
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
            } && S::epoch(engine) == epoch;
        if ok {
            ledger.report.acknowledged += done.len();
            done.iter().for_each(|w| apply(&mut ledger.confirmed, w));
        } else if short && subject.short_is_retried() {
            return Err("a short write failed a turn".into());
        } else {
            ledger.maybe = done;
        }
    }
    Ok(())
}

/// Runs `turns` on `subject` with `point` injected (none: count only),
/// crashes, recovers, reopens and checks the model. Err names what broke.
pub fn run_point<S: Subject>(
    subject: &mut S,
    turns: &[Turn],
    point: Option<FaultPoint>,
) -> Result<RunReport, String> {
    let mut ledger = Ledger::default();
    let short = point.is_some_and(|p| p.mode == FaultMode::Short);
    match subject.open(point) {
        Err(e) if short && subject.short_is_retried() => {
            return Err(format!("open failed on a short write: {e}"))
        }
        Err(_) => {}
        Ok(mut engine) => {
            run_turns(subject, &mut engine, turns, short, &mut ledger)?;
            // The process ends here without closing: a crash.
            drop(engine);
        }
    }
    ledger.report.ops = subject.ops();
    ledger.report.tails_cut = subject.recover()?;
    let mut engine = subject.reopen().map_err(|e| format!("reopen: {e}"))?;
    ledger.settle(&mut engine, "after reopen")?;
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
    apply(&mut ledger.confirmed, &marker);
    subject.recover()?;
    let mut engine = subject
        .reopen()
        .map_err(|e| format!("second reopen: {e}"))?;
    let found = contents(&mut engine)?;
    if found != ledger.confirmed {
        return Err(format!(
            "after the second reopen: {}",
            describe(&found, &ledger.confirmed)
        ));
    }
    Ok(ledger.report)
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

impl Sweep {
    fn add(&mut self, point: FaultPoint, run: Result<RunReport, String>) {
        self.runs += 1;
        match run {
            Ok(r) => {
                self.acknowledged += r.acknowledged as u64;
                self.unacked_present += r.unacked_present as u64;
                self.tails_cut += r.tails_cut as u64;
            }
            Err(e) => self.failures.push((point, e)),
        }
    }
}

/// A fresh, empty directory `name` under `scratch`.
pub fn fresh_dir(scratch: &Path, name: &str) -> Result<PathBuf, String> {
    let d = scratch.join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    Ok(d)
}

/// Runs the workload under every fault point, each on a fresh subject made
/// by `make` (given a run name: `count`, `Kill-12`…). `every` samples one
/// call in that many (1: all).
pub fn sweep<S: Subject>(
    make: &mut dyn FnMut(&str) -> Result<S, String>,
    turns: &[Turn],
    modes: &[FaultMode],
    every: u64,
) -> Result<Sweep, String> {
    let base = run_point(&mut make("count")?, turns, None)?;
    let mut s = Sweep {
        ops: base.ops,
        ..Sweep::default()
    };
    for at in (1..=base.ops).step_by(every.max(1) as usize) {
        for &mode in modes {
            let point = FaultPoint { at, mode };
            let mut subject = make(&format!("{mode:?}-{at}"))?;
            // A panic in the engine is a failure of the run, not of the sweep.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_point(&mut subject, turns, Some(point))
            }))
            .unwrap_or_else(|p| {
                let what = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                Err(format!("panic: {what}"))
            });
            s.add(point, run);
        }
    }
    Ok(s)
}
