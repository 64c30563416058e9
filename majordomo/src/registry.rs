//! The majordomo's copy of who may talk at the door — agents' keys and
//! operators — shared with its ZAP thread. Loaded from Escalator, kept
//! current by the referee's `Published::Key` / `Published::Operator`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::de::DeserializeOwned;
use vigie_escalator::{Database, RangeSpec};
use vigie_wire::front::{KeyRecord, KeyState, OperatorRecord};

use crate::error::MajordomoError;

/// Who an admitted key is.
#[derive(Debug, Clone)]
pub enum Peer {
    Agent(KeyRecord),
    Operator(OperatorRecord),
}

#[derive(Debug, Default)]
struct Tables {
    /// Agents' keys, by public key.
    keys: HashMap<String, KeyRecord>,
    /// Operators, by (tenant, name): names are per tenant, and a name's
    /// key may change.
    operators: HashMap<(String, String), OperatorRecord>,
}

/// Which records of the registry an operator's call changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refresh {
    Key(String),
    /// Every key of a host (a revocation).
    HostKeys {
        tenant: String,
        host: String,
    },
    Operator {
        tenant: String,
        name: String,
    },
}

impl Refresh {
    /// What `call`, made in `tenant`, may change; `None` for calls that
    /// leave the registry alone.
    pub fn of(tenant: &str, call: &vigie_wire::tower::ApiCall) -> Option<Refresh> {
        use vigie_wire::tower::ApiCall;
        let op = |name: &String| Refresh::Operator {
            tenant: tenant.to_owned(),
            name: name.clone(),
        };
        Some(match call {
            ApiCall::OperatorAdd { name, .. }
            | ApiCall::OperatorRotateKey { name, .. }
            | ApiCall::OperatorRevoke { name }
            | ApiCall::OperatorGrant { name, .. }
            | ApiCall::OperatorUngrant { name, .. } => op(name),
            ApiCall::KeyAdd { public, .. }
            | ApiCall::KeyAccept { public, .. }
            | ApiCall::KeyReadmit { public, .. } => Refresh::Key(public.clone()),
            ApiCall::KeyRevoke { host } | ApiCall::HostRemove { host, .. } => Refresh::HostKeys {
                tenant: tenant.to_owned(),
                host: host.clone(),
            },
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Tables>>,
}

fn load_all<T: DeserializeOwned>(
    db: &Database,
    prefix: &[u8],
    mut put: impl FnMut(T),
) -> Result<(), MajordomoError> {
    let spec = RangeSpec {
        prefix: Some(prefix.to_vec()),
        ..RangeSpec::default()
    };
    for e in db.iter(spec) {
        let e = e?;
        match vigie_wire::decode::<T>(&e.value.unwrap_or_default()) {
            Ok(rec) => put(rec),
            Err(err) => {
                tracing::warn!(event = "record_unreadable", key = %String::from_utf8_lossy(&e.key), error = %err)
            }
        }
    }
    Ok(())
}

impl Registry {
    pub fn load(db: &Database) -> Result<Self, MajordomoError> {
        let r = Registry::default();
        r.reload(db)?;
        Ok(r)
    }

    /// Reads the whole registry again from Escalator: after an operator's
    /// call changed it, so the change holds before the call's answer is
    /// relayed (the referee's publication of it may come a little later).
    pub fn reload(&self, db: &Database) -> Result<(), MajordomoError> {
        let mut fresh = Tables::default();
        load_all(db, b"key/", |k: KeyRecord| {
            fresh.keys.insert(k.public.clone(), k);
        })?;
        load_all(db, b"operator/", |o: OperatorRecord| {
            fresh
                .operators
                .insert((o.tenant.clone(), o.name.clone()), o);
        })?;
        if let Ok(mut t) = self.inner.write() {
            *t = fresh;
        }
        Ok(())
    }

    /// Reads again only the records an operator's call changed, so that
    /// the change holds before the call's answer is relayed (the referee's
    /// publication of it may come a little later) — at a cost that does not
    /// grow with the registry, unlike a [`Registry::reload`].
    pub fn refresh(&self, db: &Database, what: &Refresh) -> Result<(), MajordomoError> {
        let get = |key: String| -> Result<Option<Vec<u8>>, MajordomoError> {
            Ok(db.get(key.as_bytes())?)
        };
        let publics: Vec<String> = match what {
            Refresh::Key(public) => vec![public.clone()],
            Refresh::HostKeys { tenant, host } => match self.inner.read() {
                Ok(t) => t
                    .keys
                    .values()
                    .filter(|k| k.host == *host && k.tenant == *tenant)
                    .map(|k| k.public.clone())
                    .collect(),
                Err(_) => Vec::new(),
            },
            Refresh::Operator { tenant, name } => {
                if let Some(v) = get(format!("operator/{tenant}/{name}"))? {
                    match vigie_wire::decode::<OperatorRecord>(&v) {
                        Ok(o) => self.put_operator(o),
                        Err(e) => {
                            tracing::warn!(event = "record_unreadable", operator = %name, error = %e)
                        }
                    }
                }
                return Ok(());
            }
        };
        for public in publics {
            if let Some(v) = get(format!("key/{public}"))? {
                match vigie_wire::decode::<KeyRecord>(&v) {
                    Ok(k) => self.put(k),
                    Err(e) => {
                        tracing::warn!(event = "record_unreadable", public = %public, error = %e)
                    }
                }
            }
        }
        Ok(())
    }

    pub fn put(&self, rec: KeyRecord) {
        if let Ok(mut t) = self.inner.write() {
            t.keys.insert(rec.public.clone(), rec);
        }
    }

    pub fn put_operator(&self, rec: OperatorRecord) {
        if let Ok(mut t) = self.inner.write() {
            t.operators
                .insert((rec.tenant.clone(), rec.name.clone()), rec);
        }
    }

    /// Who `public` is, if it may talk: an accepted agent key or an
    /// operator not revoked.
    pub fn peer(&self, public: &str) -> Option<Peer> {
        let t = self.inner.read().ok()?;
        // An operator's key may have knocked (and be pending) before the
        // operator was added.
        if let Some(o) = t.operators.values().find(|o| o.public == public) {
            return (!o.revoked).then(|| Peer::Operator(o.clone()));
        }
        t.keys
            .get(public)
            .filter(|k| k.state == KeyState::Accepted)
            .map(|k| Peer::Agent(k.clone()))
    }

    /// Whether `public` is an operator's key that may still talk.
    pub fn operator_active(&self, public: &str) -> bool {
        matches!(self.peer(public), Some(Peer::Operator(_)))
    }

    /// Why a key that is not a peer is refused; `None` when the tower has
    /// never seen it (it is then recorded as pending).
    pub fn refusal(&self, public: &str) -> Option<&'static str> {
        let t = self.inner.read().ok()?;
        if t.operators.values().any(|o| o.public == public) {
            return Some("revoked");
        }
        t.keys.get(public).map(|k| k.state.word())
    }
}
