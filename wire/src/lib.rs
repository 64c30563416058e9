//! The wire protocol: every message that crosses a Vigie socket is a type of
//! this crate, encoded as MessagePack inside a versioned envelope.
//!
//! A frame is `b"VG"`, the protocol version as a big-endian `u16`, then the
//! MessagePack body. Decoding never panics: garbage, truncated, oversized and
//! wrong-version frames each give a typed [`WireError`].

pub mod access;
pub mod catalog;
pub mod change;
pub mod deploy;
mod envelope;
pub mod escalator;
pub mod front;
pub mod ids;
pub mod lifecycle;
pub mod limits;
pub mod observe;
pub mod page;
pub mod secrets;
pub mod tower;
pub mod web;

pub use envelope::{decode, encode, peek_version, WireError, MAGIC, VERSION};
