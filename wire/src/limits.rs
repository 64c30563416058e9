//! Explicit size limits. They are checked before decoding so that a hostile
//! peer cannot make a daemon allocate more than a frame's worth of memory.

/// Largest frame any Vigie socket accepts (envelope included).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;
/// Largest key Escalator stores (prefix of a sub-database included).
pub const MAX_KEY: usize = 16 * 1024;
/// Largest value Escalator stores.
pub const MAX_VALUE: usize = 4 * 1024 * 1024;
/// Most operations in one atomic batch.
pub const MAX_BATCH_OPS: usize = 100_000;
/// Longest database name.
pub const MAX_DB_NAME: usize = 64;
