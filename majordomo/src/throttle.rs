//! Rate limits on what peers can make the door do — knocks it records,
//! log lines it writes, refusals it sends — so that a flood costs the
//! tower a bounded amount. Pure (time is passed in), tested alone.

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
}
