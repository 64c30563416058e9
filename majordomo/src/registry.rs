//! The majordomo's copy of the key registry, shared with its ZAP thread.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use vigie_escalator::{Database, RangeSpec};
use vigie_wire::front::{KeyRecord, KeyState};

use crate::error::MajordomoError;

#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<HashMap<String, KeyRecord>>>,
}

impl Registry {
    pub fn load(db: &Database) -> Result<Self, MajordomoError> {
        let r = Registry::default();
        let spec = RangeSpec {
            prefix: Some(b"key/".to_vec()),
            ..RangeSpec::default()
        };
        for e in db.iter(spec) {
            let e = e?;
            match vigie_wire::decode::<KeyRecord>(&e.value.unwrap_or_default()) {
                Ok(rec) => r.put(rec),
                Err(err) => tracing::warn!(event = "key_unreadable", error = %err),
            }
        }
        Ok(r)
    }

    pub fn put(&self, rec: KeyRecord) {
        if let Ok(mut m) = self.inner.write() {
            m.insert(rec.public.clone(), rec);
        }
    }

    pub fn get(&self, public: &str) -> Option<KeyRecord> {
        self.inner.read().ok()?.get(public).cloned()
    }

    /// The accepted record of a key, if it may talk.
    pub fn accepted(&self, public: &str) -> Option<KeyRecord> {
        self.get(public).filter(|r| r.state == KeyState::Accepted)
    }
}
