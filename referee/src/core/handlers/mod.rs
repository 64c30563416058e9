//! The use cases that span concerns, as free functions over [`Core`]
//! (model: rust-analyzer's `handlers/`): each takes the core (or the
//! sub-states it needs) and the turn, and asks each concern's sub-state
//! through its methods. A concern's own rules live in its sub-state's
//! methods (`queues.rs`, `catalog.rs`…), never here.
//!
//! [`Core`]: crate::core::state::Core

pub mod api;
pub mod app_scope;
pub mod changes;
pub mod events;
pub mod host_calls;
pub mod input;
pub mod keys;
pub mod lifecycle;
pub mod observe;
pub mod operator_change;
pub mod operators;
pub mod regrant;
pub mod replay;
pub mod scope;
pub mod secrets;
pub mod web_auth;
