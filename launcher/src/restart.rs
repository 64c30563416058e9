//! What the launcher does when a child crashes while the tower runs: the
//! decision alone, no I/O.
//!
//! No child is ever given up on while the tower runs. A plug's host, the
//! provisioner or the metrics daemon may be one of many things the tower
//! does, but a daemon left stopped is worse than one retried: nobody is
//! told, requests that need it are accepted and wait forever, and only a
//! restart of the whole tower brings it back — while the cause is often
//! outside the tower and passes (a port taken by another process, a full
//! disk, a host root briefly unmounted, a lock held by a dying process).
//! The back-off doubles from `backoff_initial` with each fast crash in a
//! row, up to `backoff_max` (minutes by default, so a child that cannot
//! run costs a start every few minutes), then it is tried again at that
//! ceiling for as long as it takes. Exiting instead would stop every
//! healthy child too (plugs in the middle of changes, connected agents)
//! and count on a supervisor above the launcher, which `vigie start` run
//! by hand or `vigie demo` does not have.

use std::time::Duration;

use crate::setup::Supervision;

/// The launcher's answer to one crash: start it again after `after`.
/// `ceiling_reached` is true on the first crash of a streak whose back-off
/// is the ceiling (said once, as `child_backoff_ceiling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AfterCrash {
    pub after: Duration,
    pub ceiling_reached: bool,
}

/// The back-off before the restart that follows the `crashes`-th fast
/// crash in a row (1-based): doubling from `backoff_initial`, capped.
fn backoff(sup: &Supervision, crashes: u32) -> Duration {
    let factor = 1u32 << crashes.saturating_sub(1).min(16);
    sup.backoff_initial
        .saturating_mul(factor)
        .min(sup.backoff_max)
}

/// Decides what follows the `crashes`-th fast crash in a row of a child.
pub fn after_crash(sup: &Supervision, crashes: u32) -> AfterCrash {
    let at_ceiling = |n: u32| n >= 1 && backoff(sup, n) >= sup.backoff_max;
    AfterCrash {
        after: backoff(sup, crashes),
        ceiling_reached: at_ceiling(crashes) && !at_ceiling(crashes - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sup() -> Supervision {
        Supervision {
            grace: Duration::from_secs(5),
            ready_timeout: Duration::from_secs(30),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(400),
            fast_crash_window: Duration::from_secs(10),
        }
    }

    fn restart(ms: u64, ceiling_reached: bool) -> AfterCrash {
        AfterCrash {
            after: Duration::from_millis(ms),
            ceiling_reached,
        }
    }

    #[test]
    fn a_child_backs_off_to_the_ceiling_and_stays_there() {
        let s = sup();
        assert_eq!(after_crash(&s, 1), restart(100, false));
        assert_eq!(after_crash(&s, 2), restart(200, false));
        assert_eq!(after_crash(&s, 3), restart(400, true));
        for n in [4, 5, 50, u32::MAX] {
            assert_eq!(after_crash(&s, n), restart(400, false), "{n}");
        }
    }

    #[test]
    fn a_ceiling_below_the_first_back_off_is_reached_at_once() {
        let s = Supervision {
            backoff_initial: Duration::from_secs(1),
            ..sup()
        };
        assert_eq!(after_crash(&s, 1), restart(400, true));
        assert_eq!(after_crash(&s, 2), restart(400, false));
    }

    #[test]
    fn the_default_ceiling_is_minutes_reached_in_a_dozen_crashes() {
        let s = Supervision {
            backoff_max: Duration::from_secs(120),
            ..sup()
        };
        let total: Duration = (1..=12).map(|n| after_crash(&s, n).after).sum();
        assert_eq!(after_crash(&s, 12).after, Duration::from_secs(120));
        assert!(total < Duration::from_secs(360), "{total:?}");
    }
}
