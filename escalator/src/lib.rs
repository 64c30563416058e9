//! Escalator: a network key-value service over LevelDB.
//!
//! The server ([`server::serve`]) owns every database of a data dir and
//! answers requests on a ZeroMQ ROUTER socket; the client ([`Client`],
//! [`Database`]) offers a plyvel-like API and lets one caller keep many
//! requests in flight. Durable writes are fdatasync'ed before their reply,
//! with group commit: every durable write received while the previous sync
//! ran shares the next one.

mod client;
pub mod engine;
mod error;
mod etcd_store;
mod frame;
mod keys;
mod local;
mod lock;
mod repair;
pub mod server;
mod store;

pub use client::{Batch, Client, Database, RangeIter, Ticket};
pub use error::EscalatorError;
pub use etcd_store::EtcdStore;
pub use local::LocalServer;
pub use lock::lock_dir;
pub use repair::{repair, RepairReport};
pub use server::{serve, Probe, ProbeEvent, ServerConfig};
pub use store::{ensure_private_dir, private_dir};
pub use vigie_wire::escalator::{BatchOp, Entry, FaultKind, RangeSpec, Stats};
