//! How long an agent waits before knocking again after a refused
//! handshake: doubling from [`FIRST`] up to [`CEILING`], each wait drawn
//! between half and all of it (jitter), so that agents refused together —
//! a tower whose key changed refuses every agent at once — do not knock
//! together again, and one agent never knocks several times a second for
//! long. No I/O: the caller brings the random draw.

use std::time::Duration;

pub const FIRST: Duration = Duration::from_millis(200);
pub const CEILING: Duration = Duration::from_secs(30);

/// The wait after `refusals` refused handshakes in a row (1 or more);
/// `draw` in `[0, 1)` places it between half and all of the full wait.
pub fn knock_delay(refusals: u32, draw: f64) -> Duration {
    let doublings = refusals.saturating_sub(1).min(16);
    let full = FIRST.saturating_mul(1 << doublings).min(CEILING);
    let draw = if draw.is_finite() {
        draw.clamp(0.0, 1.0)
    } else {
        0.0
    };
    full.mul_f64(0.5 + draw / 2.0)
}

/// libzmq's first wait before it reconnects a dropped link (it doubles up
/// to [`RECONNECT_MAX`]), drawn between 100 and 600 ms: after a tower
/// restart every agent of the fleet lost its link at the same instant, and
/// the same wait everywhere would bring them back in one wave per doubling.
pub fn reconnect_first(draw: f64) -> Duration {
    let draw = if draw.is_finite() {
        draw.clamp(0.0, 1.0)
    } else {
        0.0
    };
    Duration::from_millis(100) + Duration::from_millis(500).mul_f64(draw)
}

/// The ceiling of libzmq's doubling reconnection wait.
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_ceiling_within_their_jitter() {
        assert_eq!(knock_delay(1, 0.0), Duration::from_millis(100));
        assert!(knock_delay(1, 0.999_999) < FIRST);
        assert_eq!(knock_delay(4, 0.0), Duration::from_millis(800));
        assert_eq!(knock_delay(1_000, 0.0), CEILING / 2);
        assert!(knock_delay(1_000, 1.0) <= CEILING);
        assert_eq!(knock_delay(0, f64::NAN), Duration::from_millis(100));
        // Ten refusals in a row already take most of a minute.
        let total: Duration = (1..=10).map(|n| knock_delay(n, 0.0)).sum();
        assert!(total > Duration::from_secs(50), "{total:?}");
    }

    #[test]
    fn reconnections_are_spread_over_half_a_second() {
        assert_eq!(reconnect_first(0.0), Duration::from_millis(100));
        assert_eq!(reconnect_first(1.0), Duration::from_millis(600));
        assert_eq!(reconnect_first(f64::NAN), Duration::from_millis(100));
    }
}
