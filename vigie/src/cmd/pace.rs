//! How `vigie logs` paces its calls, so a host writing faster than the CLI
//! reads cannot make it (and the tower, and the host's link) carry
//! hundreds of megabytes. Decisions only: `observe.rs` does the calls.
//!
//! Pages are [`CHUNK`] bytes at most. Until the CLI is first up to date
//! (a page with nothing more behind it) it reads back to back, at most
//! [`BURST_BYTES`] — what a host keeps of one source: reading more means
//! the writer outruns the reader; then `vigie logs` stops, saying so, and
//! `--follow` skips to the newest records. Once following, a full page
//! means the CLI is behind: it waits [`BEHIND_PAUSE`] before the next
//! (at most 256 KiB a second), and after [`MAX_BEHIND_PAGES`] full pages
//! in a row it skips to the newest records, saying how many bytes it
//! passed over. Up to date, it asks again every [`FOLLOW_EVERY`].

use std::time::Duration;

use vigie_plug::logs::{KEEP_FILES, ROTATE_BYTES};

/// The most bytes of text asked of the host in one call.
pub const CHUNK: u32 = 64 * 1024;
/// The most bytes read back to back before the CLI is first up to date.
pub const BURST_BYTES: u64 = KEEP_FILES * ROTATE_BYTES;
/// `--follow`, up to date: how long before asking again.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);
/// `--follow`, behind (the last page was full): the pause before the
/// next call.
pub const BEHIND_PAUSE: Duration = Duration::from_millis(250);
/// `--follow`: full pages in a row (about two seconds, 512 KiB) before
/// skipping to the newest records.
pub const MAX_BEHIND_PAGES: u32 = 8;

/// What to do after a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Ask for the next page at once.
    Now,
    /// Ask for the next page after this long.
    After(Duration),
    /// Pass over every record up to the end, then follow from there.
    SkipToEnd,
    /// Everything there was is shown.
    Done,
    /// The host writes faster than this reads: stop (without `--follow`).
    Outrun,
}

/// Where a `vigie logs` run is.
#[derive(Debug)]
pub struct Pace {
    follow: bool,
    /// Bytes read since the CLI was last up to date, before it first was.
    burst: u64,
    /// Up to date at least once: following.
    tailing: bool,
    /// Full pages in a row while following.
    behind: u32,
}

impl Pace {
    pub fn new(follow: bool) -> Self {
        Self {
            follow,
            burst: 0,
            tailing: false,
            behind: 0,
        }
    }

    /// After a page of `bytes` bytes of text, `more` behind it.
    pub fn after(&mut self, bytes: usize, more: bool) -> Next {
        if !more {
            self.tailing = true;
            self.behind = 0;
            return if self.follow {
                Next::After(FOLLOW_EVERY)
            } else {
                Next::Done
            };
        }
        if !self.tailing {
            self.burst = self.burst.saturating_add(bytes as u64);
            if self.burst < BURST_BYTES {
                return Next::Now;
            }
            if !self.follow {
                return Next::Outrun;
            }
            self.tailing = true;
            return Next::SkipToEnd;
        }
        self.behind += 1;
        if self.behind >= MAX_BEHIND_PAGES {
            self.behind = 0;
            return Next::SkipToEnd;
        }
        Next::After(BEHIND_PAUSE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: usize = CHUNK as usize;

    /// Calls and bytes `pace` lets through in `window` against a writer
    /// that always has more (every page full), and the skips.
    fn against_a_flood(follow: bool, window: Duration) -> (u32, u64, u32) {
        let mut pace = Pace::new(follow);
        let (mut calls, mut bytes, mut skips) = (0u32, 0u64, 0u32);
        let mut spent = Duration::ZERO;
        while spent < window {
            calls += 1;
            bytes += FULL as u64;
            match pace.after(FULL, true) {
                Next::Now => {}
                Next::After(d) => spent += d,
                Next::SkipToEnd => {
                    // The skip's own call passes over everything: up to date.
                    calls += 1;
                    skips += 1;
                    match pace.after(0, false) {
                        Next::After(d) => spent += d,
                        other => panic!("after a skip: {other:?}"),
                    }
                }
                Next::Done | Next::Outrun => break,
            }
        }
        (calls, bytes, skips)
    }

    #[test]
    fn a_flood_followed_for_30_s_costs_a_bounded_number_of_calls_and_bytes() {
        let (calls, bytes, skips) = against_a_flood(true, Duration::from_secs(30));
        // The history (8 MiB) once, then 256 KiB a second at most.
        assert!(bytes <= BURST_BYTES + 30 * 256 * 1024, "{bytes} bytes");
        assert!(calls <= 128 + 30 * 4 + skips, "{calls} calls");
        assert!(skips >= 10, "the newest records are reached: {skips} skips");
    }

    #[test]
    fn without_follow_a_flood_stops_after_what_a_host_keeps() {
        let (calls, bytes, skips) = against_a_flood(false, Duration::from_secs(30));
        assert_eq!(bytes, BURST_BYTES);
        assert_eq!(u64::from(calls), BURST_BYTES / FULL as u64);
        assert_eq!(skips, 0);
    }

    #[test]
    fn a_reader_that_keeps_up_is_never_paused_or_skipped() {
        let mut pace = Pace::new(true);
        // The history, back to back.
        for _ in 0..100 {
            assert_eq!(pace.after(FULL, true), Next::Now);
        }
        assert_eq!(pace.after(10, false), Next::After(FOLLOW_EVERY));
        // A burst shorter than the skip threshold: paused, shown whole.
        for _ in 1..MAX_BEHIND_PAGES {
            assert_eq!(pace.after(FULL, true), Next::After(BEHIND_PAUSE));
        }
        assert_eq!(pace.after(FULL / 2, false), Next::After(FOLLOW_EVERY));
        let mut once = Pace::new(false);
        assert_eq!(once.after(FULL, true), Next::Now);
        assert_eq!(once.after(1, false), Next::Done);
    }
}
