//! The Vigie test kit: run the real `vigie` binary, wait on its structured
//! events (never on log text, never by sleeping), kill and restart it.
//!
//! Every wait has a timeout; when it expires the test fails with the list
//! of events seen so far.

mod daemon;
mod events;
mod tower;

pub use daemon::{vigie_bin, Daemon, Escalator};
pub use events::{Event, EventLog};
pub use tower::Tower;
