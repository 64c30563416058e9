//! The tower's catalogs as a pure library (no sockets, no storage): the
//! CLI uses it to read files and the referee to re-check what it is sent.
//!
//! - [`servers`]: a supplier's CSV read whole, every error reported with
//!   its line and column, nothing accepted unless everything is;
//! - [`edit`]: `servers edit`'s `field=value` read and checked, and
//!   which fields a host keeps;
//! - [`export`]: servers written as the CSV the import reads;
//! - [`pools`]: which addresses of a pool are free, overlaps between pools;
//! - [`apps`]: application files (YAML) into the wire's `AppSpec`.

pub mod apps;
pub mod edit;
mod error;
pub mod export;
pub mod pools;
pub mod servers;

pub use error::{counted, thousands, CatalogError, RowError};
