//! The plug's wall clock.

/// Wall-clock Unix milliseconds, for records and reports (never to order
/// anything).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
