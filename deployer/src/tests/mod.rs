//! Unit tests of the deployer's pure parts.

mod env_files;
mod plans;
