//! What the launcher does when a child crashes while the tower runs: the
//! decision alone, no I/O.
//!
//! A plug that keeps crashing is given up on: its host is one of many and
//! the rest of the tower works without it. An essential child (escalator,
//! referee, majordomo) is never given up on while the tower runs: without
//! it the tower is down or has no front door, and the cause is often
//! outside the tower and passes (a port taken by another process, a full
//! disk, a lock held by a dying process). Its back-off doubles up to
//! `backoff_max`, then it is tried again at that ceiling for as long as it
//! takes. Exiting instead would stop every healthy child too (plugs in the
//! middle of changes, connected agents) and count on a supervisor above
//! the launcher, which `vigie start` run by hand or `vigie demo` does not
//! have.

use std::time::Duration;

use crate::setup::Supervision;

/// The launcher's answer to one crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCrash {
    /// Start it again after `after`. `ceiling_reached` is true on the first
    /// crash of a streak whose back-off is the ceiling (said once, as
    /// `child_backoff_ceiling`).
    Restart {
        after: Duration,
        ceiling_reached: bool,
    },
    /// Leave it stopped (`child_gave_up`).
    GiveUp,
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
pub fn after_crash(sup: &Supervision, essential: bool, crashes: u32) -> AfterCrash {
    if !essential && crashes >= sup.max_fast_crashes {
        return AfterCrash::GiveUp;
    }
    let after = backoff(sup, crashes);
    let at_ceiling = |n: u32| n >= 1 && backoff(sup, n) >= sup.backoff_max;
    AfterCrash::Restart {
        after,
        ceiling_reached: essential && at_ceiling(crashes) && !at_ceiling(crashes - 1),
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
            max_fast_crashes: 3,
            fast_crash_window: Duration::from_secs(10),
        }
    }

    fn restart(ms: u64, ceiling_reached: bool) -> AfterCrash {
        AfterCrash::Restart {
            after: Duration::from_millis(ms),
            ceiling_reached,
        }
    }

    #[test]
    fn a_plug_is_given_up_after_its_fast_crashes() {
        let s = sup();
        assert_eq!(after_crash(&s, false, 1), restart(100, false));
        assert_eq!(after_crash(&s, false, 2), restart(200, false));
        assert_eq!(after_crash(&s, false, 3), AfterCrash::GiveUp);
    }

    #[test]
    fn an_essential_child_backs_off_to_the_ceiling_and_stays_there() {
        let s = sup();
        assert_eq!(after_crash(&s, true, 1), restart(100, false));
        assert_eq!(after_crash(&s, true, 2), restart(200, false));
        assert_eq!(after_crash(&s, true, 3), restart(400, true));
        for n in [4, 5, 50, u32::MAX] {
            assert_eq!(after_crash(&s, true, n), restart(400, false), "{n}");
        }
    }

    #[test]
    fn a_ceiling_below_the_first_back_off_is_reached_at_once() {
        let s = Supervision {
            backoff_initial: Duration::from_secs(1),
            ..sup()
        };
        assert_eq!(after_crash(&s, true, 1), restart(400, true));
        assert_eq!(after_crash(&s, true, 2), restart(400, false));
    }
}
