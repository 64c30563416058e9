//! Range scans over a rusty-leveldb database, both ways, each costing about
//! its page.
//!
//! rusty-leveldb's backward iteration (`prev`) cannot be trusted for an
//! answer: its memtable iterator skips deletion markers going back (a key
//! deleted since the last table write shows up again), and its merging
//! iterator drops a source that has no key at or after the seek point. So a
//! reverse page uses `prev` only as a hint of where the page starts, and the
//! answer always comes from a forward walk from that start to the range's
//! end — which is correct, and stops once it has read a bounded number of
//! entries. When the hint is off (too few entries: deleted keys counted;
//! too many: keys skipped) the walk back is retried further, then the whole
//! range is walked forward as before: slow, never wrong.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};

use rusty_leveldb::{LdbIterator, DB};

use super::{push_entry, EngineError, ScanEntries, ScanLimit};
use crate::keys::Bounds;

/// Times the walk back is widened (doubling what it counts) before the
/// whole range is walked.
const HINT_ROUNDS: u32 = 6;

fn ldb(e: rusty_leveldb::Status) -> EngineError {
    EngineError::LevelDb(e.to_string())
}

fn size(k: &[u8], v: &[u8], keys_only: bool) -> usize {
    k.len() + if keys_only { 0 } else { v.len() }
}

/// A forward walk: the entries within `bounds` up to `limit`, and whether
/// the walk reached the range's end (every entry of the range is in it).
pub(super) fn forward(
    db: &mut DB,
    bounds: &Bounds,
    limit: ScanLimit,
    keys_only: bool,
    visited: &mut u64,
) -> Result<(ScanEntries, bool), EngineError> {
    let mut out = Vec::new();
    if bounds.is_empty() {
        return Ok((out, true));
    }
    let mut it = db.new_iter().map_err(ldb)?;
    it.seek(&bounds.lower);
    let mut bytes = 0;
    while let Some((k, v)) = it.valid().then(|| it.current()).flatten() {
        *visited += 1;
        if !bounds.contains(&k) {
            return Ok((out, true));
        }
        if push_entry(&mut out, &mut bytes, limit, &k, &v, keys_only) {
            // Full: complete only if nothing of the range follows.
            let more = it.advance() && it.current().is_some_and(|(k, _)| bounds.contains(&k));
            return Ok((out, !more));
        }
        if !it.advance() {
            break;
        }
    }
    Ok((out, true))
}

/// The last entries of `bounds`, newest key first, at most `limit`.
pub(super) fn reverse(
    db: &mut DB,
    bounds: &Bounds,
    limit: ScanLimit,
    keys_only: bool,
    visited: &mut u64,
) -> Result<ScanEntries, EngineError> {
    if bounds.is_empty() {
        return Ok(Vec::new());
    }
    let mut want = limit.entries.max(1);
    for _ in 0..HINT_ROUNDS {
        let Some(start) = start_hint(db, bounds, want, limit.bytes, keys_only, visited)? else {
            break;
        };
        let from = Bounds {
            lower: start.clone(),
            upper: bounds.upper.clone(),
        };
        let cap = ScanLimit {
            entries: want.saturating_mul(2).saturating_add(16),
            bytes: limit.bytes.saturating_mul(2).saturating_add(1 << 16),
        };
        let (entries, complete) = forward(db, &from, cap, keys_only, visited)?;
        if !complete {
            // The hint skipped keys: the walk back saw fewer than are there.
            break;
        }
        let (page, full) = tail(&entries, limit, keys_only);
        if full || start == bounds.lower {
            return Ok(page);
        }
        // Deleted keys were counted going back: look further.
        want = want.saturating_mul(2);
    }
    whole(db, bounds, limit, keys_only, visited)
}

/// The last entries of a forward walk, newest first, within `limit`, and
/// whether the page filled (then it is the range's last page whatever
/// came before the walk's start).
fn tail(entries: &ScanEntries, limit: ScanLimit, keys_only: bool) -> (ScanEntries, bool) {
    let mut out = Vec::new();
    let mut bytes = 0;
    for (k, v) in entries.iter().rev() {
        let value = v.as_deref().unwrap_or_default();
        if push_entry(&mut out, &mut bytes, limit, k, value, keys_only) {
            return (out, true);
        }
    }
    (out, false)
}

/// Where a reverse page of `want` entries probably starts: walks back from
/// the range's end with `prev`. `None` when it cannot tell (the range runs
/// to the end of the database, which rusty-leveldb cannot seek to, or the
/// walk misbehaved); the range's lower bound when the walk got there.
fn start_hint(
    db: &mut DB,
    bounds: &Bounds,
    want: usize,
    want_bytes: usize,
    keys_only: bool,
    visited: &mut u64,
) -> Result<Option<Vec<u8>>, EngineError> {
    let Some(upper) = bounds.upper.as_deref() else {
        return Ok(None);
    };
    let mut it = db.new_iter().map_err(ldb)?;
    // rusty-leveldb asserts in its backward paths: a hint that panics is
    // no hint, and the forward walk answers.
    let walk = catch_unwind(AssertUnwindSafe(|| {
        it.seek(upper);
        if !it.valid() {
            return None;
        }
        let mut start: Option<Vec<u8>> = None;
        let (mut n, mut bytes) = (0, 0);
        // Deleted keys may be yielded, never loop for ever.
        let mut steps = want.saturating_mul(4).saturating_add(64);
        while steps > 0 && it.prev() {
            steps -= 1;
            *visited += 1;
            let (k, v) = it.current()?;
            if k.as_ref() < bounds.lower.as_slice() {
                break;
            }
            if k.as_ref() >= upper || start.as_deref().is_some_and(|s| k.as_ref() >= s) {
                return None;
            }
            n += 1;
            bytes += size(&k, &v, keys_only);
            start = Some(k.to_vec());
            if n >= want || bytes >= want_bytes {
                return start;
            }
        }
        // Ran past the range's start (or the database's): all of it.
        Some(bounds.lower.clone())
    }));
    Ok(walk.ok().flatten())
}

/// The whole range walked forward, keeping its last page.
fn whole(
    db: &mut DB,
    bounds: &Bounds,
    limit: ScanLimit,
    keys_only: bool,
    visited: &mut u64,
) -> Result<ScanEntries, EngineError> {
    let mut it = db.new_iter().map_err(ldb)?;
    it.seek(&bounds.lower);
    let mut last = VecDeque::new();
    let mut last_bytes = 0;
    while let Some((k, v)) = it.valid().then(|| it.current()).flatten() {
        *visited += 1;
        if !bounds.contains(&k) {
            break;
        }
        last_bytes += size(&k, &v, keys_only);
        last.push_back((k, v));
        while last.len() > limit.entries || (last.len() > 1 && last_bytes > limit.bytes) {
            if let Some((k, v)) = last.pop_front() {
                last_bytes -= size(&k, &v, keys_only);
            }
        }
        if !it.advance() {
            break;
        }
    }
    let mut out = Vec::new();
    let mut bytes = 0;
    for (k, v) in last.iter().rev() {
        push_entry(&mut out, &mut bytes, limit, k, v, keys_only);
    }
    Ok(out)
}
