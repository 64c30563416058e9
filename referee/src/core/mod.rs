//! The referee's decisions and the state they decide on: what a call, a
//! plug's event or a tick does, given the tower's memory and what the
//! shell read for it. No socket, no store, no clock: the shell passes
//! what they hold (`referee_core_does_no_io` in the tidy test).

pub mod access;
pub mod app_deploys;
pub mod audit;
pub mod audit_query;
pub mod audit_read;
pub mod catalog;
pub mod catalog_log;
pub mod codec;
pub mod fetch;
pub mod fetched;
pub mod grants;
pub mod handlers;
pub mod health;
pub mod hosts;
pub mod idem;
pub mod keys;
pub mod labels;

pub mod model;
pub mod observed;
pub mod operators;
pub mod paging;
pub mod queues;
pub mod rollouts;
pub mod scope;
pub mod state;
pub mod submission;
pub mod table;

pub mod turn;
pub mod vault;
pub mod web_keys;
