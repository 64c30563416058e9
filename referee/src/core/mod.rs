//! The referee's decisions and the state they decide on: what a call, a
//! plug's event or a tick does, given the tower's memory and what the
//! shell read for it. No socket, no store, no clock: the shell passes
//! what they hold (`referee_core_does_no_io` in the tidy test).

pub mod access;
pub mod app_deploys;
pub mod apps;
pub mod audit;
pub mod audit_query;
pub mod audit_read;
pub mod catalog;
pub mod catalog_calls;
pub mod catalog_log;
pub mod codec;
pub mod deploy_verbs;
pub mod deployments;

pub mod fetch;
pub mod fetched;
pub mod follow;
pub mod grants;
pub mod handlers;
pub mod health;
pub mod host_labels;
pub mod hosts;
pub mod idem;
pub mod ips;
pub mod keys;
pub mod labels;

pub mod model;
pub mod observed;
pub mod operators;
pub mod paging;
pub mod provision;
pub mod provision_pool;
pub mod queues;
pub mod rollout_command;
pub mod rollouts;
pub mod scope;
pub mod servers;
pub mod servers_life;
pub mod setup_hosts;
pub mod state;
pub mod submission;
pub mod table;

pub mod turn;
pub mod vault;
pub mod web_keys;
