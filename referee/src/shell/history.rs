//! Reading a call's history: what [`reads`] names is read from the store
//! into a [`Fetched`], again until nothing new is named (a retried
//! change's program is known once its record is), then the core answers
//! the call from there alone.

use std::time::Instant;

use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, Caller, IdemKey};

use crate::core::fetch::{reads, Fetched, Read};
use crate::core::tower::Tower;
use crate::core::turn::Turn;
use crate::shell::store::Store;

/// Reads one thing `read` names into `fetched`, keeping a failure as the
/// store's error (the call answers it as a storage fault).
fn read(fetched: &mut Fetched, store: &dyn Store, read: Read) {
    match read {
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

/// Reads what `call` needs, then answers it (once per idempotency key).
pub fn answer(
    tower: &mut Tower,
    store: &dyn Store,
    caller: &Caller,
    call: ApiCall,
    idem: Option<IdemKey>,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let mut fetched = Fetched::default();
    loop {
        let new: Vec<Read> = reads(tower, caller, &call, idem.as_ref(), &fetched)
            .into_iter()
            .filter(|r| !fetched.has(r))
            .collect();
        if new.is_empty() {
            break;
        }
        for r in new {
            read(&mut fetched, store, r);
        }
    }
    tower.idempotent(caller, call, idem, &fetched, now, turn)
}

/// The caller a logs call goes on as (`core/app_scope.rs`): the
/// tenant's deployments are read only for a caller with an application
/// scope.
pub fn logs_caller(
    tower: &mut Tower,
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
    tower.app_logs_caller(caller, query, &deployments, turn)
}

/// A call without an idempotency key, its history read first (tests).
#[cfg(test)]
pub fn api(
    tower: &mut Tower,
    caller: &Caller,
    call: ApiCall,
    store: &dyn Store,
    now: Instant,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    answer(tower, store, caller, call, None, now, turn)
}
