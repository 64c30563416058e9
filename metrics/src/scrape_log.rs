//! What the daemon says about scrapes, decided without I/O. A scrape loop
//! (Prometheus every second, or a local user hammering the port) must not
//! grow the tower's log: no scrape is logged at `info` on its own. Said at
//! `info` are only a change in what a scrape could read (the first scrape,
//! the referee or Escalator lost or back), the first refused scrape of a
//! period, and once a period the counts (`scrapes_counted`); every scrape
//! is still an event at `debug` (`VIGIE_LOG=vigie_metrics=debug`).

use std::time::{Duration, Instant};

/// How often the counts are said (when there was any scrape).
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// What one served scrape could read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Read {
    pub referee: bool,
    pub escalator: bool,
}

/// The counts of a period, said once at its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub served: u64,
    pub refused: u64,
}

#[derive(Debug)]
pub struct ScrapeLog {
    period: Duration,
    started: Instant,
    counts: Summary,
    last_read: Option<Read>,
    refusal_said: bool,
}

impl ScrapeLog {
    pub fn new(now: Instant, period: Duration) -> Self {
        Self {
            period,
            started: now,
            counts: Summary {
                served: 0,
                refused: 0,
            },
            last_read: None,
            refusal_said: false,
        }
    }

    /// A scrape was served: whether it is said at `info` (what it could
    /// read changed).
    pub fn served(&mut self, read: Read) -> bool {
        self.counts.served += 1;
        self.last_read.replace(read) != Some(read)
    }

    /// A scrape was refused: whether it is said at `info` (the period's
    /// first).
    pub fn refused(&mut self) -> bool {
        self.counts.refused += 1;
        !std::mem::replace(&mut self.refusal_said, true)
    }

    /// The period's counts once it is over and anything happened in it.
    pub fn summary(&mut self, now: Instant) -> Option<Summary> {
        if now.duration_since(self.started) < self.period {
            return None;
        }
        self.started = now;
        self.refusal_said = false;
        let c = std::mem::replace(
            &mut self.counts,
            Summary {
                served: 0,
                refused: 0,
            },
        );
        (c.served + c.refused > 0).then_some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UP: Read = Read {
        referee: true,
        escalator: true,
    };

    #[test]
    fn a_scrape_loop_is_said_once_a_period() {
        let t0 = Instant::now();
        let mut log = ScrapeLog::new(t0, SUMMARY_EVERY);
        assert!(log.served(UP), "the first scrape is said");
        let said = (0..10_000).filter(|_| log.served(UP)).count()
            + (0..10_000).filter(|_| log.refused()).count();
        assert_eq!(said, 1, "only the first refusal");
        assert_eq!(log.summary(t0 + Duration::from_secs(1)), None);
        let s = log.summary(t0 + SUMMARY_EVERY);
        assert_eq!(
            s,
            Some(Summary {
                served: 10_001,
                refused: 10_000
            })
        );
        assert!(log.refused(), "a new period's first refusal is said");
        assert_eq!(log.summary(t0 + SUMMARY_EVERY), None, "not over yet");
    }

    #[test]
    fn a_change_in_what_a_scrape_reads_is_said() {
        let mut log = ScrapeLog::new(Instant::now(), SUMMARY_EVERY);
        let down = Read {
            referee: false,
            escalator: true,
        };
        assert!(log.served(UP));
        assert!(log.served(down));
        assert!(!log.served(down));
        assert!(log.served(UP));
    }

    #[test]
    fn a_quiet_period_says_nothing() {
        let t0 = Instant::now();
        let mut log = ScrapeLog::new(t0, SUMMARY_EVERY);
        assert_eq!(log.summary(t0 + 2 * SUMMARY_EVERY), None);
    }
}
