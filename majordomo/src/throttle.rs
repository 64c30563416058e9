//! Rate limits on what peers can make the door do — knocks it records,
//! log lines it writes, refusals it sends — so that a flood costs the
//! tower a bounded amount. Pure (time is passed in), tested alone.
//!
//! Knocks have a fair budget ([`FairBudget`]): a flood from many source
//! addresses must not keep a genuine new agent from being recorded, so a
//! source that has nothing in the window takes a slot from the most
//! active one rather than being dropped.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Fixed windows: in each, the first `per_key` events of a key (and
/// `total` events in all) pass; the rest are only counted, and the count
/// is handed back once when the window closes.
#[derive(Debug)]
pub struct Throttle<K> {
    window: Duration,
    per_key: u32,
    total: u32,
    started: Instant,
    counts: HashMap<K, u32>,
    passed: u32,
    suppressed: u64,
    /// What a window closed by `allow` (nobody rolled it in time) held
    /// back: handed out by the next `roll`, never lost.
    carried: Option<Suppressed>,
}

/// What a closed window held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed {
    pub events: u64,
    /// Distinct keys seen in the window.
    pub sources: usize,
}

impl<K: Eq + Hash> Throttle<K> {
    pub fn new(window: Duration, per_key: u32, total: u32, now: Instant) -> Self {
        Self {
            window,
            per_key,
            total,
            started: now,
            counts: HashMap::new(),
            passed: 0,
            suppressed: 0,
            carried: None,
        }
    }

    /// Whether this event of `key` may go on.
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        if now.duration_since(self.started) >= self.window {
            self.carry();
            self.reset(now);
        }
        let n = self.counts.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        if *n <= self.per_key && self.passed < self.total {
            self.passed += 1;
            true
        } else {
            self.suppressed += 1;
            false
        }
    }

    /// Closes the window if it is over: what it suppressed, if anything.
    pub fn roll(&mut self, now: Instant) -> Option<Suppressed> {
        if now.duration_since(self.started) >= self.window {
            self.carry();
            self.reset(now);
        }
        self.carried.take()
    }

    /// Adds the current window's count to what the next `roll` says.
    fn carry(&mut self) {
        if self.suppressed == 0 {
            return;
        }
        let c = self.carried.get_or_insert(Suppressed {
            events: 0,
            sources: 0,
        });
        c.events += self.suppressed;
        c.sources += self.counts.len();
    }

    fn reset(&mut self, now: Instant) {
        self.started = now;
        self.counts.clear();
        self.passed = 0;
        self.suppressed = 0;
    }
}

/// Slots a window may take back after they were used, in `total`s.
pub const OVERDRAFT: u32 = 10;

/// What [`FairBudget::admit`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit<K> {
    Pass,
    /// Passes in the place of one of this source's: the caller drops one
    /// of its knocks not yet sent, if it has one.
    PassEvicting(K),
    Drop,
}

#[derive(Debug)]
struct Share {
    /// Slots it holds in this window.
    held: u32,
    /// When it first passed (oldest first among equals).
    since: u64,
}

/// Fixed windows of `total` slots shared by sources, `per_key` at most
/// each. When every slot is held, a source holding fewer than another
/// takes one of the most active source's (the oldest among equals), so
/// the slots tend to an even share and a new source always gets one.
/// A slot taken back may already have been used (its knock sent): such
/// overdrafts are bounded too, [`OVERDRAFT`] × `total` a window, so a
/// window never lets more than `(1 + OVERDRAFT) × total` events through,
/// however many sources: a new source is refused only when more sources
/// than that knocked in the same window.
#[derive(Debug)]
pub struct FairBudget<K> {
    window: Duration,
    per_key: u32,
    total: u32,
    started: Instant,
    shares: HashMap<K, Share>,
    held: u32,
    evictions: u32,
    order: u64,
    suppressed: u64,
    /// Sources of the window that were dropped at least once.
    dropped_sources: std::collections::HashSet<K>,
    carried: Option<Suppressed>,
}

impl<K: Eq + Hash + Clone> FairBudget<K> {
    pub fn new(window: Duration, per_key: u32, total: u32, now: Instant) -> Self {
        Self {
            window,
            per_key: per_key.max(1),
            total: total.max(1),
            started: now,
            shares: HashMap::new(),
            held: 0,
            evictions: 0,
            order: 0,
            suppressed: 0,
            dropped_sources: Default::default(),
            carried: None,
        }
    }

    /// Whether this event of `key` may go on, and in whose place.
    pub fn admit(&mut self, key: K, now: Instant) -> Admit<K> {
        self.roll_if_over(now);
        let mine = self.shares.get(&key).map_or(0, |s| s.held);
        if mine >= self.per_key {
            return self.drop(key);
        }
        if self.held < self.total {
            self.take(key);
            return Admit::Pass;
        }
        if self.evictions >= self.total.saturating_mul(OVERDRAFT) {
            return self.drop(key);
        }
        // The most active source, the oldest among equals.
        let victim = self
            .shares
            .iter()
            .filter(|(k, _)| **k != key)
            .max_by(|a, b| a.1.held.cmp(&b.1.held).then(b.1.since.cmp(&a.1.since)))
            .map(|(k, s)| (k.clone(), s.held));
        match victim {
            Some((v, held)) if held > mine + 1 || (mine == 0 && held >= 1) => {
                if let Some(s) = self.shares.get_mut(&v) {
                    s.held -= 1;
                }
                self.held -= 1;
                self.evictions += 1;
                self.take(key);
                Admit::PassEvicting(v)
            }
            _ => self.drop(key),
        }
    }

    /// An eviction whose knock was still unsent: it cost nothing.
    pub fn refund(&mut self) {
        self.evictions = self.evictions.saturating_sub(1);
    }

    fn take(&mut self, key: K) {
        self.order += 1;
        let order = self.order;
        let s = self.shares.entry(key).or_insert(Share {
            held: 0,
            since: order,
        });
        s.held += 1;
        self.held += 1;
    }

    fn drop(&mut self, key: K) -> Admit<K> {
        self.suppressed += 1;
        self.dropped_sources.insert(key);
        Admit::Drop
    }

    /// Closes the window if it is over: what it dropped, if anything.
    pub fn roll(&mut self, now: Instant) -> Option<Suppressed> {
        self.roll_if_over(now);
        self.carried.take()
    }

    fn roll_if_over(&mut self, now: Instant) {
        if now.duration_since(self.started) < self.window {
            return;
        }
        if self.suppressed > 0 {
            let c = self.carried.get_or_insert(Suppressed {
                events: 0,
                sources: 0,
            });
            c.events += self.suppressed;
            c.sources += self.dropped_sources.len();
        }
        self.started = now;
        self.shares.clear();
        self.dropped_sources.clear();
        self.held = 0;
        self.evictions = 0;
        self.suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_passes_a_bounded_number_per_key_and_in_all_then_is_counted() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Duration::from_secs(10), 3, 5, t0);
        let passed_a = (0..1_000).filter(|_| t.allow("a", t0)).count();
        assert_eq!(passed_a, 3, "per key");
        let passed_b = (0..1_000).filter(|_| t.allow("b", t0)).count();
        assert_eq!(passed_b, 2, "the total caps every key together");
        assert_eq!(
            t.roll(t0 + Duration::from_secs(1)),
            None,
            "window still open"
        );
        let s = t.roll(t0 + Duration::from_secs(10)).unwrap();
        assert_eq!(s.events, 1_995);
        assert_eq!(s.sources, 2);
        // A new window lets the key through again.
        assert!(t.allow("a", t0 + Duration::from_secs(11)));
        assert_eq!(
            t.roll(t0 + Duration::from_secs(21)),
            None,
            "nothing held back"
        );
        // A window closed by `allow` rather than `roll` keeps its count.
        for _ in 0..10 {
            t.allow("c", t0 + Duration::from_secs(22));
        }
        t.allow("c", t0 + Duration::from_secs(40));
        let s = t.roll(t0 + Duration::from_secs(41)).expect("carried over");
        assert_eq!(s.events, 7);
    }

    #[test]
    fn a_new_source_gets_a_slot_during_a_flood_from_many_sources() {
        let t0 = Instant::now();
        let mut b = FairBudget::new(Duration::from_secs(60), 10, 100, t0);
        // The attack: 200 sources knocking three times each.
        let mut passed = 0;
        for _ in 0..3 {
            for src in 0..200 {
                if b.admit(src, t0) != Admit::Drop {
                    passed += 1;
                }
            }
        }
        // Each source got in at least once; most repeats did not.
        assert!((200..=450).contains(&passed), "{passed}");
        // A genuine agent, new this window, is recorded.
        assert!(matches!(b.admit(10_000, t0), Admit::PassEvicting(_)));
        // One source alone never takes more than its share.
        let mut one = FairBudget::new(Duration::from_secs(60), 10, 100, t0);
        let n = (0..1_000)
            .filter(|_| one.admit(1, t0) != Admit::Drop)
            .count();
        assert_eq!(n, 10);
        // A flood of sources knocking once each: newcomers still get in
        // while the window's overdraft lasts, bounded.
        let mut many = FairBudget::new(Duration::from_secs(60), 10, 100, t0);
        let n = (0..2_000)
            .filter(|s| many.admit(*s, t0) != Admit::Drop)
            .count();
        assert_eq!(n, 1_100, "the budget and its overdraft, no more");
        // Unsent evictions are refunded: then newcomers keep getting in.
        let mut refunded = FairBudget::new(Duration::from_secs(60), 10, 100, t0);
        for s in 0..5_000 {
            if matches!(refunded.admit(s, t0), Admit::PassEvicting(_)) {
                refunded.refund();
            }
        }
        assert_ne!(refunded.admit(9_999, t0), Admit::Drop);
        let s = many.roll(t0 + Duration::from_secs(60)).unwrap();
        assert_eq!((s.events, s.sources), (900, 900));
        assert_eq!(many.admit(1, t0 + Duration::from_secs(61)), Admit::Pass);
    }

    #[test]
    fn the_most_active_source_gives_way_first() {
        let t0 = Instant::now();
        let mut b = FairBudget::new(Duration::from_secs(60), 10, 10, t0);
        for _ in 0..8 {
            assert_eq!(b.admit("loud", t0), Admit::Pass);
        }
        assert_eq!(b.admit("a", t0), Admit::Pass);
        assert_eq!(b.admit("b", t0), Admit::Pass);
        assert_eq!(b.admit("c", t0), Admit::PassEvicting("loud"));
        // A source already holding one does not evict one holding two.
        for _ in 0..5 {
            b.admit("d", t0);
        }
        assert_eq!(b.admit("a", t0), Admit::PassEvicting("loud"));
    }
}
