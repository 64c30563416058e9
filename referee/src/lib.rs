//! The referee: receives plugs' events on a PULL socket and operators'
//! calls on a ROUTER socket, owns the change-request state machine, stores
//! every state change in Escalator before anyone hears of it, and publishes
//! orders on a PUB socket routed by exact host id.
//!
//! queued → dispatched → running (step i) → succeeded | rolled back |
//! rollback failed | cancelled | abandoned; per host FIFO by the sequence the referee
//! assigns, at most one change in flight per host, all hosts in parallel.

mod api;
mod apps;
mod audit;
mod audit_query;
mod audit_read;
mod audit_verify;
mod catalog;
mod catalog_calls;
mod catalog_log;
mod clock;
mod codec;
mod deployments;
mod error;
mod events;
mod fetch;
mod grants;
mod health;
mod host_labels;
mod idem;
mod ips;
mod keys;
mod labels;
mod lifecycle;
mod model;
mod observe;
mod observed;
mod operators;
mod paging;
mod provision;
mod regrant;
mod replay;
mod rollouts;
mod scope;
mod secrets;
mod server;
mod servers;
mod servers_life;
mod setup_hosts;
pub mod ssh_keys;
mod store;
mod submission;
mod table;
mod tower;
mod turn;
mod vault;
mod web_auth;
mod web_keys;

pub use audit::{verify_chain, AuditChain};
pub use clock::now_ms;
pub use error::RefereeError;
pub use labels::LabelRule;
pub use operators::{ADMIN, TOWER_TENANT};
pub use server::{serve, RefereeConfig};
pub use setup_hosts::parse_setup_host;
#[cfg(test)]
mod catalog_tests;
#[cfg(test)]
mod enrol_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod mem_store;
#[cfg(test)]
mod secrets_tests;
#[cfg(test)]
mod shares_tests;
#[cfg(test)]
mod test_store;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod web_auth_tests;
