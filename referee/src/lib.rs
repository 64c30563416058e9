//! The referee: receives plugs' events on a PULL socket and operators'
//! calls on a ROUTER socket, owns the change-request state machine, stores
//! every state change in Escalator before anyone hears of it, and publishes
//! orders on a PUB socket routed by exact host id.
//!
//! queued → dispatched → running (step i) → succeeded | rolled back |
//! rollback failed | cancelled | abandoned; per host FIFO by the sequence the referee
//! assigns, at most one change in flight per host, all hosts in parallel.

mod core;
mod error;
mod shell;

pub use crate::core::audit::{verify_chain, AuditChain};
pub use crate::core::handlers::setup_hosts::parse_setup_host;
pub use crate::core::labels::LabelRule;
pub use crate::core::operators::{ADMIN, TOWER_TENANT};
pub use crate::shell::clock::now_ms;
pub use crate::shell::server::{serve, RefereeConfig};
pub use crate::shell::ssh_keys;
pub use error::RefereeError;
#[cfg(test)]
mod catalog_tests;
#[cfg(test)]
mod enrol_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod secrets_tests;
#[cfg(test)]
mod shares_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod web_auth_tests;
