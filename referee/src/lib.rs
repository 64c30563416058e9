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
mod catalog;
mod client;
mod deployments;
mod error;
mod events;
mod grants;
mod health;
mod idem;
mod ips;
mod keys;
mod labels;
mod lifecycle;
mod model;
mod observe;
mod operators;
mod paging;
mod provision;
mod regrant;
mod scope;
mod server;
mod servers;
mod servers_life;
mod setup_hosts;
pub mod ssh_keys;
mod submission;
mod tower;
mod turn;
mod web_auth;

pub use audit::{verify_chain, AuditChain};
pub use client::{poll_for, ApiClient, ClientError, Direct, Incoming, Link, Watcher};
pub use error::RefereeError;
pub use labels::LabelRule;
pub use operators::{ADMIN, TOWER_TENANT};
pub use server::{serve, RefereeConfig};
pub use setup_hosts::parse_setup_host;
pub use tower::now_ms;

#[cfg(test)]
mod catalog_tests;
#[cfg(test)]
mod enrol_tests;
#[cfg(test)]
mod shares_tests;
#[cfg(test)]
mod test_store;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod web_auth_tests;
