//! The use cases that span concerns, as free functions over [`Core`]
//! (model: rust-analyzer's `handlers/`): each takes the core (or the
//! sub-states it needs) and the turn, and asks each concern's sub-state
//! through its methods. A concern's own rules live in its sub-state's
//! methods (`queues.rs`, `catalog.rs`…), never here.
//!
//! [`Core`]: crate::core::state::Core

pub mod app_deploys;
pub mod deploy_verbs;
pub mod deployments;
pub mod follow;
pub mod rollout_command;
pub mod rollouts;
