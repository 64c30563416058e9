//! The use cases that span concerns, as free functions over [`Core`]
//! (model: rust-analyzer's `handlers/`): each takes the core (or the
//! sub-states it needs) and the turn, and asks each concern's sub-state
//! through its methods. A concern's own rules live in its sub-state's
//! methods (`queues.rs`, `catalog.rs`…), never here.
//!
//! [`Core`]: crate::core::state::Core

pub mod apps;
pub mod catalog_calls;
pub mod enrol;
pub mod host_labels;
pub mod ips;
pub mod provision;
pub mod provision_pool;
pub mod servers;
pub mod servers_life;
pub mod setup_hosts;
pub mod shares;
