//! Loading the core at start: the shell reads and decodes what the tower
//! keeps in memory — counters, the audit head, operators, keys, hosts,
//! the changes not final with their programs, the last `RECENT` finished
//! changes, idempotency keys, the catalogs — and the core is built from
//! it (`Core::from_loaded`), never reading the store itself.

use std::collections::HashMap;
use std::sync::Arc;

use vigie_wire::catalog::{Allocation, PoolSpec};
use vigie_wire::change::ChangeSpec;

use crate::core::audit::{self, AuditChain};
use crate::core::catalog::CatalogRecords;
use crate::core::codec::{corrupt, decode};
use crate::core::idem;
use crate::core::model::{change_key, done_key, spec_key, ChangeRecord, NEXT_SEQ_KEY};
use crate::core::state::{Core, Loaded, Timing, RECENT};
use crate::error::RefereeError;
use crate::shell::store::{scan_all, Store};

/// Rebuilds the tower from what the store holds.
pub fn tower(db: &dyn Store, timing: Timing) -> Result<Core, RefereeError> {
    let (tenant_seqs, next_seq, audit) = counters(db)?;
    let mut keys = HashMap::new();
    for rec in all::<vigie_wire::front::KeyRecord>(db, b"key/")? {
        keys.insert(rec.public.clone(), rec);
    }
    let (queued, programs) = queued(db)?;
    let loaded = Loaded {
        operators: scan_all(db, b"operator/").map_err(|f| corrupt(b"operator/", f.message))?,
        keys,
        hosts: all(db, b"host/")?,
        queued,
        programs,
        recent: recent(db, next_seq)?,
        tenant_seqs,
        next_seq,
        audit,
        idem: by_key(db, idem::PREFIX.as_bytes())?,
        catalog: catalog(db)?,
        secrets: by_key(db, crate::core::vault::PREFIX.as_bytes())?,
    };
    Core::from_loaded(loaded, timing)
}

/// Every record under `prefix`, decoded, in key order.
fn all<T: serde::de::DeserializeOwned>(
    db: &dyn Store,
    prefix: &[u8],
) -> Result<Vec<T>, RefereeError> {
    let mut out = Vec::new();
    for e in db.scan(prefix, None) {
        let (key, value) = e?;
        out.push(decode(&key, &value)?);
    }
    Ok(out)
}

/// Every record under `prefix`, decoded, by its key.
fn by_key<T: serde::de::DeserializeOwned>(
    db: &dyn Store,
    prefix: &[u8],
) -> Result<HashMap<Vec<u8>, T>, RefereeError> {
    let mut out = HashMap::new();
    for e in db.scan(prefix, None) {
        let (key, value) = e?;
        let rec = decode(&key, &value)?;
        out.insert(key, rec);
    }
    Ok(out)
}

/// A stored big-endian counter.
fn counter(key: &[u8], value: &[u8]) -> Result<u64, RefereeError> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| corrupt(key, "not 8 bytes"))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Each tenant's last audit number, the next sequence, the audit head.
fn counters(db: &dyn Store) -> Result<(HashMap<String, u64>, u64, AuditChain), RefereeError> {
    let mut tenant_seqs = HashMap::new();
    for e in db.scan(audit::TENANT_PREFIX, None) {
        let (key, value) = e?;
        let tenant = String::from_utf8_lossy(&key[audit::TENANT_PREFIX.len()..]).into_owned();
        tenant_seqs.insert(tenant, counter(&key, &value)?);
    }
    let next_seq = match db.get(NEXT_SEQ_KEY)? {
        Some(v) => counter(NEXT_SEQ_KEY, &v)?,
        None => 1,
    };
    let chain = match db.get(audit::HEAD_KEY)? {
        Some(v) => {
            AuditChain::decode_head(&v).ok_or_else(|| corrupt(audit::HEAD_KEY, "bad head"))?
        }
        None => AuditChain::default(),
    };
    Ok((tenant_seqs, next_seq, chain))
}

type Programs = HashMap<String, (Arc<ChangeSpec>, usize)>;
type Queued = Vec<(Vec<u8>, ChangeRecord)>;

/// The changes not final (each with its `queue/` entry's key) and their
/// programs, each read once.
fn queued(db: &dyn Store) -> Result<(Queued, Programs), RefereeError> {
    let mut queued = Vec::new();
    let mut programs = Programs::new();
    for e in db.scan(b"queue/", None) {
        let (key, value) = e?;
        let id = String::from_utf8(value).map_err(|err| corrupt(&key, err))?;
        let ck = change_key(&id);
        let rec: ChangeRecord = decode(&ck, &db.get(&ck)?.ok_or_else(|| corrupt(&ck, "missing"))?)?;
        if !programs.contains_key(&rec.spec_id) {
            let sk = spec_key(&rec.spec_id);
            let bytes = db.get(&sk)?.ok_or_else(|| corrupt(&sk, "missing"))?;
            let spec: ChangeSpec = decode(&sk, &bytes)?;
            programs.insert(rec.spec_id.clone(), (Arc::new(spec), bytes.len()));
        }
        queued.push((key, rec));
    }
    Ok((queued, programs))
}

/// The most recent final changes, for `status` without an id: only
/// those of the last `RECENT` sequence numbers, so a start reads a
/// bounded part of history (older ones are read when asked for, by
/// `fetch.rs`). The start is a whole key: one without its `done/`
/// prefix sorts below it and Escalator would scan every final change.
fn recent(
    db: &dyn Store,
    next_seq: u64,
) -> Result<Vec<vigie_wire::tower::ChangeView>, RefereeError> {
    let from = done_key(next_seq.saturating_sub(RECENT as u64));
    let mut out = Vec::new();
    for e in db.scan(b"done/", Some(&from)) {
        let (_, value) = e?;
        let ck = change_key(&String::from_utf8_lossy(&value));
        if let Some(v) = db.get(&ck)? {
            out.push(decode::<ChangeRecord>(&ck, &v)?.view);
        }
    }
    Ok(out)
}

/// The catalogs' records: servers, import sessions, pools and their
/// allocations, applications, provisioning requests.
fn catalog(db: &dyn Store) -> Result<CatalogRecords, RefereeError> {
    Ok(CatalogRecords {
        servers: all(db, b"server/")?,
        sessions: all(db, b"session/")?,
        pools: all::<(String, PoolSpec)>(db, b"pool/")?,
        ips: all::<(String, Allocation)>(db, b"ip/")?,
        apps: all(db, b"app/")?,
        provisions: all(db, b"provision/")?,
    })
}
