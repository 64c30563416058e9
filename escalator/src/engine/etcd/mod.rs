//! The etcd engine: an Escalator database kept in an etcd cluster, so a
//! standby tower on another machine finds every acknowledged write.
//!
//! Every key lives under the engine's prefix (one cluster holds many
//! databases; etcd refuses an empty key, a prefixed one never is). A write
//! batch is one etcd transaction (`batch.rs`): atomic, refused whole when
//! over the cluster's limits. A fenced engine ([`Fence`]) adds to every
//! transaction the compare "the election key is held by my lease": once
//! the lease is gone, etcd itself refuses the write ([`EngineError::Fenced`]).
//! etcd acknowledges a write once a quorum has it on disk, so `flush` and
//! `sync` have nothing left to do.

mod batch;
mod election;
mod gateway;

use std::rc::Rc;
use std::time::Duration;

use serde_json::{json, Value};

pub use batch::{TooLarge, TxnLimits};
pub use election::{Election, Leader};
use gateway::Gateway;

use super::faults::{killed, Faults, WriteFate};
use super::{push_entry, Engine, EngineError, ScanEntries, ScanLimit, Staging};
use crate::keys::{successor, Bounds};
use gateway::{b64, bytes_of};
use vigie_wire::escalator::BatchOp;

/// Entries asked of etcd by a scan's first range request: values may be
/// big, and a scan's byte limit is the engine's to keep. Each following
/// request of the scan asks twice as many, up to `PAGE`.
const FIRST_PAGE: usize = 64;
const PAGE: usize = 1_000;

#[derive(Debug, Clone)]
pub struct EtcdOptions {
    /// Client URLs of the cluster's members (`http://HOST:PORT`).
    pub endpoints: Vec<String>,
    /// Every key of this database lives under it.
    pub prefix: Vec<u8>,
    /// Of one request.
    pub timeout: Duration,
    pub limits: TxnLimits,
}

/// Writes allowed only while `key` is held by `lease`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub key: Vec<u8>,
    pub lease: i64,
}

#[derive(Debug)]
pub struct EtcdEngine {
    gw: Gateway,
    prefix: Vec<u8>,
    /// The end of the prefix's range.
    end: Vec<u8>,
    limits: TxnLimits,
    fence: Option<Fence>,
    unsynced: bool,
    faults: Option<Rc<Faults>>,
    /// The server's single puts and deletes of a turn, sent as few
    /// transactions (see [`Staging`]).
    staged: Vec<BatchOp>,
    staged_bytes: usize,
    /// Moves at every failed write: what was staged with it may be lost.
    generation: u64,
}

impl EtcdEngine {
    /// An engine over the cluster; the first request tells whether it answers.
    pub fn open(opts: &EtcdOptions) -> Result<Self, EngineError> {
        Self::open_with_faults(opts, None)
    }

    /// Opens with injected faults (crash-point tests): at the N-th write a
    /// request whose answer is lost (`Fail`), torn (`Short`), or torn and
    /// the end of all I/O (`Kill`).
    pub fn open_with_faults(
        opts: &EtcdOptions,
        faults: Option<Rc<Faults>>,
    ) -> Result<Self, EngineError> {
        let end = successor(&opts.prefix)
            .filter(|_| !opts.prefix.is_empty())
            .ok_or_else(|| {
                EngineError::Etcd("an etcd prefix must be non-empty and not all 0xff".into())
            })?;
        let mut e = Self {
            gw: Gateway::new(&opts.endpoints, opts.timeout)?,
            prefix: opts.prefix.clone(),
            end,
            limits: opts.limits,
            fence: None,
            unsynced: false,
            faults,
            staged: Vec::new(),
            staged_bytes: 0,
            generation: 0,
        };
        e.alive()?;
        e.gw.call("maintenance/status", &json!({}))?;
        Ok(e)
    }

    /// From now on every write holds only while the fence does.
    pub fn set_fence(&mut self, fence: Option<Fence>) {
        self.fence = fence;
    }

    /// One transaction, fenced; a failure moves the generation.
    fn commit(&mut self, ops: &[BatchOp]) -> Result<(), EngineError> {
        let r = self.commit_once(ops);
        if r.is_err() {
            self.generation += 1;
        }
        r
    }

    fn commit_once(&mut self, ops: &[BatchOp]) -> Result<(), EngineError> {
        self.alive()?;
        if ops.is_empty() {
            return Ok(());
        }
        let body = self.txn_body(ops)?;
        self.inject(&body)?;
        let v = self.gw.call("kv/txn", &body)?;
        if !v.get("succeeded").and_then(Value::as_bool).unwrap_or(false) {
            let f = self.fence.clone().unwrap_or(Fence {
                key: Vec::new(),
                lease: 0,
            });
            return Err(EngineError::Fenced {
                key: String::from_utf8_lossy(&f.key).into_owned(),
                lease: f.lease,
            });
        }
        self.unsynced = true;
        Ok(())
    }

    fn alive(&self) -> Result<(), EngineError> {
        match &self.faults {
            Some(f) => f.alive().map_err(|e| EngineError::Etcd(e.to_string())),
            None => Ok(()),
        }
    }

    fn txn_body(&self, ops: &[BatchOp]) -> Result<Value, EngineError> {
        let folded = batch::fold(&self.prefix, ops);
        batch::check(&folded, self.limits)?;
        let success: Vec<Value> = folded
            .iter()
            .map(|(k, v)| match v {
                Some(v) => json!({"request_put": {"key": b64(k), "value": b64(v)}}),
                None => json!({"request_delete_range": {"key": b64(k)}}),
            })
            .collect();
        let compare: Vec<Value> = self
            .fence
            .iter()
            .map(|f| {
                json!({"target": "LEASE", "key": b64(&f.key), "result": "EQUAL",
                       "lease": f.lease.to_string()})
            })
            .collect();
        Ok(json!({"compare": compare, "success": success}))
    }

    /// Injects the fault of this write, if any: `Ok` when the write goes
    /// on normally.
    fn inject(&self, body: &Value) -> Result<(), EngineError> {
        let Some(f) = &self.faults else {
            return Ok(());
        };
        let len = body.to_string().len();
        let fate = f.on_write(len);
        let lost = |what: &str| Err(EngineError::Etcd(format!("injected: {what}")));
        match fate {
            WriteFate::Whole => Ok(()),
            WriteFate::NoSpace => {
                self.gw.send_torn("kv/txn", body, None)?;
                lost("the answer was lost")
            }
            WriteFate::Short(n) => {
                self.gw.send_torn("kv/txn", body, Some(n))?;
                lost("the request was torn")
            }
            WriteFate::Kill(n) => {
                self.gw.send_torn("kv/txn", body, Some(n))?;
                Err(EngineError::Etcd(killed().to_string()))
            }
            WriteFate::Dead => Err(EngineError::Etcd(killed().to_string())),
        }
    }

    fn range_page(
        &mut self,
        lower: &[u8],
        upper: &[u8],
        want: usize,
        reverse: bool,
        keys_only: bool,
    ) -> Result<(Vec<Value>, bool), EngineError> {
        let body = json!({
            "key": b64(lower), "range_end": b64(upper), "limit": want,
            "sort_order": if reverse { "DESCEND" } else { "ASCEND" },
            "sort_target": "KEY", "keys_only": keys_only,
        });
        let v = self.gw.call("kv/range", &body)?;
        let more = v.get("more").and_then(Value::as_bool).unwrap_or(false);
        let kvs = match v.get("kvs") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        Ok((kvs, more))
    }
}

impl Engine for EtcdEngine {
    fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, EngineError> {
        self.apply_staged()?;
        let full = [self.prefix.as_slice(), key].concat();
        let v = self.gw.call("kv/range", &json!({"key": b64(&full)}))?;
        match v.get("kvs").and_then(|k| k.get(0)) {
            Some(kv) => Ok(Some(bytes_of(kv, "value")?)),
            None => Ok(None),
        }
    }

    fn write(&mut self, ops: &[BatchOp]) -> Result<(), EngineError> {
        self.apply_staged()?;
        self.commit(ops)
    }

    fn flush(&mut self) -> Result<(), EngineError> {
        self.apply_staged()
    }

    fn sync(&mut self) -> Result<u32, EngineError> {
        self.apply_staged()?;
        Ok(u32::from(std::mem::take(&mut self.unsynced)))
    }

    fn scan(
        &mut self,
        bounds: &Bounds,
        reverse: bool,
        limit: ScanLimit,
        keys_only: bool,
    ) -> Result<ScanEntries, EngineError> {
        self.apply_staged()?;
        let mut out = Vec::new();
        if bounds.is_empty() {
            return Ok(out);
        }
        let mut lower = [self.prefix.as_slice(), &bounds.lower].concat();
        let mut upper = match &bounds.upper {
            Some(u) => [self.prefix.as_slice(), u].concat(),
            None => self.end.clone(),
        };
        let mut bytes = 0;
        let mut page = FIRST_PAGE;
        loop {
            let want = limit.entries.saturating_sub(out.len()).clamp(1, page);
            page = (page * 2).min(PAGE);
            let (kvs, more) = self.range_page(&lower, &upper, want, reverse, keys_only)?;
            let mut last = None;
            for kv in &kvs {
                let full = bytes_of(kv, "key")?;
                let value = bytes_of(kv, "value")?;
                let key = full.get(self.prefix.len()..).unwrap_or_default();
                if push_entry(&mut out, &mut bytes, limit, key, &value, keys_only) {
                    return Ok(out);
                }
                last = Some(full);
            }
            match last {
                Some(l) if more => {
                    if reverse {
                        upper = l;
                    } else {
                        lower = [l.as_slice(), &[0]].concat();
                    }
                }
                _ => return Ok(out),
            }
        }
    }
}

impl Staging for EtcdEngine {
    /// Each staged put or delete is one request's whole write: a turn's
    /// may go as several transactions, each within the cluster's limits.
    fn stage(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<(), EngineError> {
        let size = self.prefix.len() + key.len() + value.map_or(0, <[u8]>::len);
        if !self.staged.is_empty()
            && (self.staged.len() >= self.limits.ops
                || self.staged_bytes + size > self.limits.bytes / 2)
        {
            self.apply_staged()?;
        }
        self.staged.push(match value {
            Some(v) => BatchOp::Put {
                key: key.to_vec(),
                value: v.to_vec(),
            },
            None => BatchOp::Delete { key: key.to_vec() },
        });
        self.staged_bytes += size;
        Ok(())
    }

    fn apply_staged(&mut self) -> Result<(), EngineError> {
        if self.staged.is_empty() {
            return self.alive();
        }
        let ops = std::mem::take(&mut self.staged);
        self.staged_bytes = 0;
        self.commit(&ops)
    }

    fn generation(&self) -> u64 {
        self.generation
    }

    fn close(mut self: Box<Self>) -> Result<(), EngineError> {
        self.apply_staged()
    }
}
