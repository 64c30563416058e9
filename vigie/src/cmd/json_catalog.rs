//! The catalogs' part of the CLI's `--json` (`vigie_json::catalog`).

pub use vigie_json::catalog::*;
