//! Reading a call's history: what [`reads`] names is read from the store
//! into a [`Fetched`], again until nothing new is named (a retried
//! change's program is known once its record is), then the core answers
//! the call from there alone.

#[cfg(test)]
use std::time::Instant;

#[cfg(test)]
use vigie_wire::tower::ApiAnswer;
use vigie_wire::tower::{ApiCall, ApiFault, Caller, IdemKey};

use std::path::Path;

use crate::core::fetch::reads;
use crate::core::fetched::{Fetched, Read};
use crate::core::state::Core;
use crate::core::turn::Turn;
use crate::shell::store::Store;

/// Reads one thing `read` names into `fetched`, keeping a failure as the
/// store's error (the call answers it as a storage fault); a tenant's SSH
/// key is made at its first use, in `keys` (the referee's `--ssh-keys`).
fn read(fetched: &mut Fetched, store: &dyn Store, keys: Option<&Path>, read: Read) {
    match read {
        Read::SshKey(tenant) => {
            let got = match keys {
                Some(dir) => crate::shell::ssh_keys::ensure(dir, &tenant)
                    .map(|k| k.public)
                    .map_err(|e| e.to_string()),
                None => Err("this referee was started without a key dir".into()),
            };
            fetched.ssh_key_read(tenant, got);
        }
        Read::Key(k) => {
            let v = store.get(&k).map_err(|e| e.to_string());
            fetched.key_read(k, v);
        }
        Read::Prefix(p) => {
            let v = store
                .scan(&p, None)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string());
            fetched.prefix_read(p, v);
        }
        Read::Page {
            prefix,
            start,
            limit,
        } => {
            let v = store
                .page(&prefix, &start, limit)
                .map_err(|e| e.to_string());
            fetched.page_read(start, v);
        }
    }
}

/// Reads what `call` needs of history, until nothing new is named.
pub fn fetch(
    tower: &Core,
    store: &dyn Store,
    caller: &Caller,
    call: &ApiCall,
    idem: Option<&IdemKey>,
) -> Fetched {
    let mut fetched = Fetched::default();
    loop {
        let new: Vec<Read> = reads(tower, caller, call, idem, &fetched)
            .into_iter()
            .filter(|r| !fetched.has(r))
            .collect();
        if new.is_empty() {
            return fetched;
        }
        for r in new {
            read(&mut fetched, store, tower.catalog().ssh_keys(), r);
        }
    }
}

/// Reads what `call` needs, then answers it (once per idempotency key).
#[cfg(test)]
pub fn answer(
    tower: &mut Core,
    store: &dyn Store,
    caller: &Caller,
    call: ApiCall,
    idem: Option<IdemKey>,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let fetched = fetch(tower, store, caller, &call, idem.as_ref());
    crate::core::handlers::replay::idempotent(tower, caller, call, idem, &fetched, now, turn)
}

/// The caller a logs call goes on as (`core/app_scope.rs`): the
/// tenant's deployments are read only for a caller with an application
/// scope.
pub fn logs_caller(
    tower: &mut Core,
    store: &dyn Store,
    caller: Caller,
    query: &vigie_wire::observe::LogsQuery,
    turn: &mut Turn,
) -> Result<Caller, ApiFault> {
    let mut deployments = Vec::new();
    if crate::core::scope::Visible::of(&caller).has_apps() {
        let prefix = format!("deploy/{}/", caller.tenant);
        for entry in store.scan(prefix.as_bytes(), None) {
            let (k, v) = entry.map_err(|e| {
                ApiFault::new(vigie_wire::tower::ApiFaultKind::Storage, e.to_string())
            })?;
            if let Ok(d) = crate::core::codec::decode(&k, &v) {
                deployments.push(d);
            }
        }
    }
    crate::core::handlers::app_scope::app_logs_caller(tower, caller, query, &deployments, turn)
}

/// A call without an idempotency key, its history read first (tests).
#[cfg(test)]
pub fn api(
    tower: &mut Core,
    caller: &Caller,
    call: ApiCall,
    store: &dyn Store,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    answer(tower, store, caller, call, None, now, turn)
}
