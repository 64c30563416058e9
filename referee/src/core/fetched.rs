//! What the shell read of history for one call (`fetch.rs` names it):
//! records, prefixes and pages, each read or failed. A decision looks
//! only here, never in the store.

use std::collections::{BTreeMap, HashMap};

use crate::core::codec::Entry;

/// One read: a record, every record under a prefix, or a page of them
/// (at most `limit` from the whole key `start`); or a tenant's SSH public
/// key, made at its first use (`shell/ssh_keys.rs`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Read {
    Key(Vec<u8>),
    Prefix(Vec<u8>),
    Page {
        prefix: Vec<u8>,
        start: Vec<u8>,
        limit: usize,
    },
    SshKey(String),
}

/// What was read for a call; a failed read keeps the store's error, which
/// the call answers as a storage fault.
#[derive(Debug, Default)]
pub struct Fetched {
    keys: HashMap<Vec<u8>, Result<Option<Vec<u8>>, String>>,
    prefixes: HashMap<Vec<u8>, Result<Vec<Entry>, String>>,
    /// Pages read, by their start key.
    pages: BTreeMap<Vec<u8>, Result<Vec<Entry>, String>>,
    /// Tenants' SSH public keys, or why one could not be made.
    ssh_keys: HashMap<String, Result<String, String>>,
}

impl Fetched {
    /// Whether `read` was read already.
    pub fn has(&self, read: &Read) -> bool {
        match read {
            Read::Key(k) => self.keys.contains_key(k),
            Read::Prefix(p) => self.prefixes.contains_key(p),
            Read::Page { start, .. } => self.pages.contains_key(start),
            Read::SshKey(tenant) => self.ssh_keys.contains_key(tenant),
        }
    }

    /// A record read (`None`: not stored), or the store's error.
    pub fn key_read(&mut self, key: Vec<u8>, got: Result<Option<Vec<u8>>, String>) {
        self.keys.insert(key, got);
    }

    /// The records under a prefix, or the store's error.
    pub fn prefix_read(&mut self, prefix: Vec<u8>, got: Result<Vec<Entry>, String>) {
        self.prefixes.insert(prefix, got);
    }

    /// A page read from its start key, or the store's error.
    pub fn page_read(&mut self, start: Vec<u8>, got: Result<Vec<Entry>, String>) {
        self.pages.insert(start, got);
    }

    /// A tenant's SSH public key, or why it could not be made.
    pub fn ssh_key_read(&mut self, tenant: String, got: Result<String, String>) {
        self.ssh_keys.insert(tenant, got);
    }

    /// The SSH public key of `tenant` read for the call.
    pub fn ssh_key(&self, tenant: &str) -> Result<&str, String> {
        match self.ssh_keys.get(tenant) {
            Some(Ok(k)) => Ok(k),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!(
                "the SSH key of tenant {tenant} was not read for this call"
            )),
        }
    }

    /// How many pages under `prefix` were read.
    pub fn pages_read(&self, prefix: &[u8]) -> usize {
        self.pages.keys().filter(|k| k.starts_with(prefix)).count()
    }

    /// The records of every page read under `prefix`, in key order
    /// (none when no page was).
    pub fn pages(&self, prefix: &[u8]) -> Result<Vec<&Entry>, String> {
        let mut v = Vec::new();
        for (_, page) in self.pages.iter().filter(|(k, _)| k.starts_with(prefix)) {
            v.extend(page.as_ref().map_err(String::clone)?);
        }
        Ok(v)
    }

    /// A record read for the call (`None`: not stored).
    pub fn get(&self, key: &[u8]) -> Result<Option<&[u8]>, String> {
        match self.keys.get(key) {
            Some(Ok(v)) => Ok(v.as_deref()),
            Some(Err(e)) => Err(e.clone()),
            None => Err(not_read(key)),
        }
    }

    /// The records under `prefix` read for the call, in key order.
    pub fn scan(&self, prefix: &[u8]) -> Result<&[Entry], String> {
        match self.prefixes.get(prefix) {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(e.clone()),
            None => Err(not_read(prefix)),
        }
    }
}

/// A call looked for what `fetch::reads` did not name: a bug, answered as a
/// storage fault rather than a guess.
fn not_read(key: &[u8]) -> String {
    format!(
        "{} was not read for this call",
        String::from_utf8_lossy(key)
    )
}
