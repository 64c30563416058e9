//! The use cases that span concerns, as free functions over [`Core`]
//! (model: rust-analyzer's `handlers/`): each takes the core (or the
//! sub-states it needs) and the turn, and asks each concern's sub-state
//! through its methods. A concern's own rules live in its sub-state's
//! methods (`queues.rs`, `catalog.rs`…), never here.
//!
//! [`Core`]: crate::core::state::Core

pub mod api;
pub mod app_deploys;
pub mod app_scope;
pub mod apps;
pub mod catalog_calls;
pub mod changes;
pub mod deploy_verbs;
pub mod deployments;
pub mod enrol;
pub mod events;
pub mod follow;
pub mod host_calls;
pub mod host_labels;
pub mod input;
pub mod ips;
pub mod keys;
pub mod lifecycle;
pub mod observe;
pub mod operator_change;
pub mod operators;
pub mod provision;
pub mod provision_pool;
pub mod regrant;
pub mod replay;
pub mod rollout_command;
pub mod rollouts;
pub mod scope;
pub mod secrets;
pub mod servers;
pub mod servers_life;
pub mod setup_hosts;
pub mod shares;
pub mod web_auth;
