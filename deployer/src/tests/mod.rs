//! Unit tests of the deployer's pure parts.

mod compile;
mod env_files;
mod migrations;
mod plans;
