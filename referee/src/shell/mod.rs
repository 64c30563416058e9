//! The referee's shell: the loop and its sockets, the store, reading a
//! call's history before the core decides, committing a turn's writes,
//! publishing, the queries answered off the loop, and the only clock.

pub mod audit_list;
pub mod audit_verify;
pub mod clock;
pub mod health_feed;
pub mod history;
pub mod load;
#[cfg(test)]
pub mod mem_store;
pub mod server;
pub mod ssh_keys;
pub mod store;
#[cfg(test)]
pub mod test_store;
pub mod vault_files;
