//! When a watched replica is restarted, and when it is given up on: the
//! decision alone, on the results of its checks and a clock passed in
//! (no I/O), so every path is unit tested.

use std::collections::VecDeque;

/// Restarts allowed in [`RESTART_WINDOW_MS`]: one more and the replica is
/// stopped and left stopped (a crash loop that a restart does not cure is
/// reported, not fed for ever).
pub const MAX_RESTARTS: usize = 5;
pub const RESTART_WINDOW_MS: u64 = 10 * 60 * 1000;

/// What an instance's `health_watch` asks, as the decision needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Failed checks in a row that restart the replica (0: never).
    pub restart_after: u32,
    /// How long a (re)started replica has to become healthy before its
    /// failed checks count.
    pub start_ms: u64,
}

/// What to do after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Healthy; `recovered` the first time since a restart.
    Healthy { recovered: bool },
    /// Still starting: the failure does not count yet.
    Starting,
    /// A failure counted, `streak` in a row, not enough to restart.
    Failing { streak: u32 },
    /// Restart it (SIGTERM → grace → SIGKILL → start): `streak` failures
    /// in a row; `restarts` is this one's rank in the window.
    Restart { streak: u32, restarts: usize },
    /// Restarted too often: stop it and leave it stopped.
    GiveUp { restarts: usize },
    /// Given up on already: nothing more.
    GivenUp,
}

/// One replica's record of its checks.
#[derive(Debug, Clone)]
pub struct ReplicaHealth {
    started_ms: u64,
    /// Healthy once since it (re)started: failures count at once.
    proven: bool,
    streak: u32,
    restarted: bool,
    restarts: VecDeque<u64>,
    given_up: bool,
}

impl ReplicaHealth {
    /// A replica first seen (or seen again after a change) at `now_ms`:
    /// it has its start window, as if it had just started.
    pub fn new(now_ms: u64) -> Self {
        Self {
            started_ms: now_ms,
            proven: false,
            streak: 0,
            restarted: false,
            restarts: VecDeque::new(),
            given_up: false,
        }
    }

    /// The replica answered its check (`ok`) or not, at `now_ms`.
    pub fn checked(&mut self, ok: bool, now_ms: u64, p: Policy) -> Verdict {
        if self.given_up {
            return Verdict::GivenUp;
        }
        if ok {
            let recovered = std::mem::take(&mut self.restarted);
            self.proven = true;
            self.streak = 0;
            return Verdict::Healthy { recovered };
        }
        if !self.proven && now_ms < self.started_ms.saturating_add(p.start_ms) {
            return Verdict::Starting;
        }
        self.streak = self.streak.saturating_add(1);
        if p.restart_after == 0 || self.streak < p.restart_after {
            return Verdict::Failing {
                streak: self.streak,
            };
        }
        let streak = std::mem::take(&mut self.streak);
        self.restarts
            .retain(|t| now_ms.saturating_sub(*t) < RESTART_WINDOW_MS);
        if self.restarts.len() >= MAX_RESTARTS {
            self.given_up = true;
            return Verdict::GiveUp {
                restarts: self.restarts.len(),
            };
        }
        self.restarts.push_back(now_ms);
        self.started_ms = now_ms;
        self.proven = false;
        self.restarted = true;
        Verdict::Restart {
            streak,
            restarts: self.restarts.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy {
        restart_after: 3,
        start_ms: 1_000,
    };

    #[test]
    fn failures_count_only_after_the_start_window_or_once_healthy() {
        let mut r = ReplicaHealth::new(0);
        assert_eq!(r.checked(false, 500, P), Verdict::Starting);
        assert_eq!(r.checked(false, 1_000, P), Verdict::Failing { streak: 1 });
        let mut r = ReplicaHealth::new(0);
        assert_eq!(
            r.checked(true, 10, P),
            Verdict::Healthy { recovered: false }
        );
        assert_eq!(r.checked(false, 20, P), Verdict::Failing { streak: 1 });
    }

    #[test]
    fn n_failures_in_a_row_restart_and_a_success_in_between_resets_them() {
        let mut r = ReplicaHealth::new(0);
        r.checked(true, 0, P);
        r.checked(false, 1, P);
        r.checked(false, 2, P);
        assert_eq!(r.checked(true, 3, P), Verdict::Healthy { recovered: false });
        r.checked(false, 4, P);
        r.checked(false, 5, P);
        assert_eq!(
            r.checked(false, 6, P),
            Verdict::Restart {
                streak: 3,
                restarts: 1
            }
        );
        // The restarted replica has its start window again...
        assert_eq!(r.checked(false, 7, P), Verdict::Starting);
        // ...and its first success says it recovered, once.
        assert_eq!(r.checked(true, 8, P), Verdict::Healthy { recovered: true });
        assert_eq!(r.checked(true, 9, P), Verdict::Healthy { recovered: false });
    }

    #[test]
    fn restarted_too_often_it_is_given_up_and_stays_so() {
        let mut r = ReplicaHealth::new(0);
        let mut now = 0;
        let mut fail_until_verdict = |r: &mut ReplicaHealth| loop {
            now += 1_000;
            match r.checked(false, now, P) {
                Verdict::Starting | Verdict::Failing { .. } => continue,
                v => return v,
            }
        };
        for n in 1..=MAX_RESTARTS {
            assert_eq!(
                fail_until_verdict(&mut r),
                Verdict::Restart {
                    streak: 3,
                    restarts: n
                }
            );
        }
        assert_eq!(
            fail_until_verdict(&mut r),
            Verdict::GiveUp {
                restarts: MAX_RESTARTS
            }
        );
        assert_eq!(r.checked(true, now + 1, P), Verdict::GivenUp);
    }

    #[test]
    fn restarts_older_than_the_window_are_forgotten() {
        let mut r = ReplicaHealth::new(0);
        let mut now = 0;
        for _ in 0..MAX_RESTARTS * 3 {
            // One restart every three minutes: at most 4 in ten minutes.
            now += 3 * 60 * 1000;
            r.checked(true, now, P);
            r.checked(false, now + 1, P);
            r.checked(false, now + 2, P);
            let v = r.checked(false, now + 3, P);
            assert!(
                matches!(v, Verdict::Restart { restarts, .. } if restarts <= 4),
                "{v:?}"
            );
        }
    }

    #[test]
    fn restart_after_zero_only_watches() {
        let p = Policy {
            restart_after: 0,
            start_ms: 0,
        };
        let mut r = ReplicaHealth::new(0);
        for t in 1..100 {
            assert!(matches!(r.checked(false, t, p), Verdict::Failing { .. }));
        }
    }
}
