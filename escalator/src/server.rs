//! The Escalator server: one ROUTER socket, one thread owning the store.
//!
//! Each turn of the loop drains every request already queued (up to a cap),
//! answers reads at once, applies writes, then — if any of them asked for
//! durability — fdatasyncs each touched database once before releasing their
//! replies. That is group commit: N writers waiting on the same turn share
//! one sync. Range scans are cut into pages so that one client's big scan
//! holds the others back by at most a page.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::engine::{Engine, LevelDbOptions, ScanLimit};
use crate::error::EscalatorError;
use crate::keys::{bounds, full_key};
use crate::store::Store;
use vigie_wire::escalator::{
    BatchOp, DbRef, Entry, Fault, FaultKind, Histogram, RangeSpec, Reply, Request, RequestBody,
    RequestHead, Response, Stats,
};
use vigie_wire::limits::{MAX_BATCH_OPS, MAX_FRAME, MAX_KEY, MAX_VALUE};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub data_dir: PathBuf,
    /// ZeroMQ endpoints to bind, e.g. `tcp://127.0.0.1:7100`, `ipc:///run/x`.
    pub endpoints: Vec<String>,
    /// Share one fdatasync among the durable writes of a loop turn. Off: one
    /// fdatasync per durable write (the naive reference of the benchmark).
    pub group_commit: bool,
    pub page_entries: usize,
    pub page_bytes: usize,
    pub leveldb: LevelDbOptions,
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>, endpoints: Vec<String>) -> Self {
        Self {
            data_dir: data_dir.into(),
            endpoints,
            group_commit: true,
            page_entries: 1_000,
            page_bytes: 1 << 20,
            leveldb: LevelDbOptions::default(),
        }
    }
}

/// What the server did, in order; tests use it to prove that a durable
/// write's reply left only after the fdatasync that covers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeEvent {
    /// `seq` numbers the requests the server received, from 1.
    Applied {
        seq: u64,
        durable: bool,
    },
    Synced {
        db: String,
        calls: u32,
    },
    Replied {
        seq: u64,
    },
}

pub type Probe = Box<dyn FnMut(ProbeEvent) + Send>;

/// A write applied during a loop turn.
struct Written {
    db: String,
    durable: bool,
    /// The engine's generation when applied: if the engine dropped its
    /// instance since (a failed write or sync), this write went with it.
    generation: u64,
}

/// Most requests handled per loop turn before replies go out.
const DRAIN_CAP: usize = 4_096;

struct Server {
    cfg: ServerConfig,
    store: Store,
    stats: Stats,
    probe: Option<Probe>,
    /// Why a database's writes failed during this turn.
    failed: BTreeMap<String, String>,
}

fn fault(kind: FaultKind, message: impl Into<String>) -> Fault {
    Fault::new(kind, message)
}

fn check_key(db: &DbRef, key: &[u8]) -> Result<Vec<u8>, Fault> {
    let full = full_key(&db.prefix, key);
    if full.len() > MAX_KEY {
        return Err(fault(
            FaultKind::TooLarge,
            format!(
                "key of {} bytes (prefix included) exceeds {MAX_KEY}",
                full.len()
            ),
        ));
    }
    Ok(full)
}

fn check_value(value: &[u8]) -> Result<(), Fault> {
    if value.len() > MAX_VALUE {
        return Err(fault(
            FaultKind::TooLarge,
            format!("value of {} bytes exceeds {MAX_VALUE}", value.len()),
        ));
    }
    Ok(())
}

fn storage(e: impl std::fmt::Display) -> Fault {
    fault(FaultKind::Storage, e.to_string())
}

impl Server {
    fn emit(&mut self, ev: ProbeEvent) {
        if let Some(p) = self.probe.as_mut() {
            p(ev);
        }
    }

    /// Executes one decoded request. Returns the response and, for a write
    /// that was applied, what must be flushed or synced before replying.
    fn execute(&mut self, body: RequestBody) -> (Result<Response, Fault>, Option<Written>) {
        let durable = body.is_durable_write();
        let result = match body {
            RequestBody::Ping => Ok(Response::Pong),
            RequestBody::Stats => {
                let mut s = self.stats.clone();
                s.databases = u32::try_from(self.store.len()).unwrap_or(u32::MAX);
                Ok(Response::Stats(s))
            }
            RequestBody::Create { name, exist_ok } => {
                self.store.create(&name, exist_ok).map(|()| Response::Done)
            }
            RequestBody::Open { db } => self.store.get_mut(&db.name).map(|_| Response::Done),
            RequestBody::Get { db, key } => check_key(&db, &key).and_then(|k| {
                let e = self.store.get_mut(&db.name)?;
                e.get(&k).map(Response::Value).map_err(storage)
            }),
            RequestBody::Exists { db, key } => check_key(&db, &key).and_then(|k| {
                let e = self.store.get_mut(&db.name)?;
                e.get(&k)
                    .map(|v| Response::Exists(v.is_some()))
                    .map_err(storage)
            }),
            RequestBody::Put { db, key, value, .. } => {
                let op = BatchOp::Put { key, value };
                return self.write(&db, vec![op], durable);
            }
            RequestBody::Delete { db, key, .. } => {
                return self.write(&db, vec![BatchOp::Delete { key }], durable);
            }
            RequestBody::Batch { db, ops, .. } => return self.write(&db, ops, durable),
            RequestBody::Range { db, spec } => self.range(&db, &spec),
        };
        (result, None)
    }

    fn write(
        &mut self,
        db: &DbRef,
        ops: Vec<BatchOp>,
        durable: bool,
    ) -> (Result<Response, Fault>, Option<Written>) {
        match self.try_write(db, ops) {
            Ok(generation) => {
                let w = Written {
                    db: db.name.clone(),
                    durable,
                    generation,
                };
                (Ok(Response::Done), Some(w))
            }
            Err(f) => {
                if f.kind == FaultKind::Storage {
                    self.failed.insert(db.name.clone(), f.message.clone());
                }
                (Err(f), None)
            }
        }
    }

    /// Validates every operation before touching the engine: a batch is
    /// written whole or not at all. Returns the engine's generation.
    fn try_write(&mut self, db: &DbRef, ops: Vec<BatchOp>) -> Result<u64, Fault> {
        if ops.len() > MAX_BATCH_OPS {
            return Err(fault(
                FaultKind::TooLarge,
                format!("batch of {} operations exceeds {MAX_BATCH_OPS}", ops.len()),
            ));
        }
        let mut full = Vec::with_capacity(ops.len());
        for op in ops {
            full.push(match op {
                BatchOp::Put { key, value } => {
                    check_value(&value)?;
                    BatchOp::Put {
                        key: check_key(db, &key)?,
                        value,
                    }
                }
                BatchOp::Delete { key } => BatchOp::Delete {
                    key: check_key(db, &key)?,
                },
            });
        }
        let engine = self.store.get_mut(&db.name)?;
        let generation = engine.generation();
        engine.write(&full).map_err(storage)?;
        Ok(generation)
    }

    fn range(&mut self, db: &DbRef, spec: &RangeSpec) -> Result<Response, Fault> {
        for k in [&spec.start, &spec.stop, &spec.prefix]
            .into_iter()
            .flatten()
        {
            check_key(db, k)?;
        }
        let b = bounds(&db.prefix, spec);
        let want = spec.limit.map_or(usize::MAX, |l| l as usize);
        let limit = ScanLimit {
            entries: want.min(self.cfg.page_entries),
            bytes: self.cfg.page_bytes,
        };
        if want == 0 {
            return Ok(Response::Page {
                entries: Vec::new(),
                resume: None,
            });
        }
        let engine = self.store.get_mut(&db.name)?;
        let raw = engine
            .scan(&b, spec.reverse, limit, spec.keys_only)
            .map_err(storage)?;
        let bytes: usize = raw
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        let page_full = raw.len() >= limit.entries || bytes >= limit.bytes;
        let raw_len = raw.len();
        let plen = db.prefix.len();
        let entries: Vec<Entry> = raw
            .into_iter()
            .map(|(k, value)| Entry {
                key: k[plen..].to_vec(),
                value,
            })
            .collect();
        // More may follow only if this page stopped on a page limit, not on
        // the range's end or the caller's limit.
        let resume = match entries.last() {
            Some(last) if raw_len < want && page_full => Some(if spec.reverse {
                last.key.clone()
            } else {
                let mut k = last.key.clone();
                k.push(0);
                k
            }),
            _ => None,
        };
        Ok(Response::Page { entries, resume })
    }

    /// Decodes and executes one frame; returns the reply and what must reach
    /// the disk before it is sent.
    fn handle(&mut self, frame: &[u8]) -> (Reply, Option<Written>) {
        self.stats.requests += 1;
        let (id, result, sync) = match vigie_wire::decode::<Request>(frame) {
            Ok(req) => {
                let (r, sync) = self.execute(req.body);
                (req.id, r, sync)
            }
            Err(e) => {
                // Answer with the request's id when at least that decodes.
                let id = vigie_wire::decode::<RequestHead>(frame).map_or(0, |h| h.id);
                let kind = if id == 0 {
                    FaultKind::Malformed
                } else {
                    FaultKind::BadRequest
                };
                (id, Err(fault(kind, e.to_string())), None)
            }
        };
        if let Err(f) = &result {
            self.stats.errors += 1;
            tracing::debug!(event = "request_rejected", id, kind = ?f.kind, reason = %f.message);
        }
        let durable = sync.as_ref().is_some_and(|w| w.durable);
        if durable {
            self.stats.durable_writes += 1;
        }
        let seq = self.stats.requests;
        self.emit(ProbeEvent::Applied { seq, durable });
        (Reply { id, body: result }, sync)
    }

    /// Makes a database's writes of this turn survive a process crash, or
    /// power loss when one of them was durable. A failure (a full disk, an
    /// I/O error) fails this turn's writes to that database, not the server.
    fn commit(&mut self, name: &str, durable: bool, writes: u64) {
        let r = if durable {
            let began = std::time::Instant::now();
            self.store.sync(name).map(|calls| {
                self.stats.syncs += u64::from(calls);
                self.stats
                    .commit_us
                    .observe(began.elapsed().as_micros() as u64);
                self.stats.commit_writes.observe(writes);
                self.emit(ProbeEvent::Synced {
                    db: name.to_owned(),
                    calls,
                });
            })
        } else {
            self.store.flush(name)
        };
        if let Err(e) = r {
            tracing::warn!(event = "commit_failed", db = name, durable, error = %e);
            self.failed.insert(name.to_owned(), e.to_string());
        }
    }

    /// An applied write whose engine instance was dropped before its turn
    /// was committed is not acknowledged: its reply becomes an error.
    fn settle(&mut self, reply: &mut Reply, written: Option<(String, u64)>) {
        let Some((db, generation)) = written else {
            return;
        };
        let now = self.store.get_mut(&db).map(|e| e.generation());
        if now.is_ok_and(|g| g == generation) {
            return;
        }
        let why = self
            .failed
            .get(&db)
            .map_or("the database failed in the same turn", String::as_str);
        self.stats.errors += 1;
        reply.body = Err(fault(
            FaultKind::Storage,
            format!(
                "write to {db:?} not acknowledged: {why}; it is applied whole or not at all, \
                 and nothing acknowledged was lost"
            ),
        ));
    }
}

/// The buckets of the commit histograms (microseconds; writes per
/// fdatasync), chosen around what a disk's fdatasync costs (0.1 to 100 ms)
/// and the group sizes the benchmark sees.
const COMMIT_US_BOUNDS: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];
const COMMIT_WRITES_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

fn encode_reply(reply: &Reply) -> Vec<u8> {
    vigie_wire::encode(reply).unwrap_or_else(|e| {
        let fallback = Reply {
            id: reply.id,
            body: Err(fault(FaultKind::TooLarge, e.to_string())),
        };
        vigie_wire::encode(&fallback).unwrap_or_default()
    })
}

/// Runs the server until `shutdown` is set, then syncs and closes every
/// database. Binds all endpoints before returning an error-free start.
pub fn serve(
    cfg: ServerConfig,
    shutdown: Arc<AtomicBool>,
    probe: Option<Probe>,
) -> Result<(), EscalatorError> {
    let store = Store::open(&cfg.data_dir, cfg.leveldb)?;
    let ctx = zmq::Context::new();
    let sock = ctx.socket(zmq::ROUTER)?;
    sock.set_maxmsgsize(MAX_FRAME as i64)?;
    sock.set_rcvhwm(100_000)?;
    sock.set_sndhwm(100_000)?;
    sock.set_linger(1_000)?;
    // The endpoints as bound: a `tcp://127.0.0.1:*` wildcard becomes a port.
    let mut bound = Vec::new();
    for ep in &cfg.endpoints {
        sock.bind(ep).inspect_err(|e| {
            tracing::error!(event = "bind_failed", endpoint = %ep, error = %e);
        })?;
        bound.push(sock.get_last_endpoint()?.unwrap_or_else(|_| ep.clone()));
    }
    tracing::info!(
        event = "escalator_started",
        data_dir = %cfg.data_dir.display(),
        endpoints = %bound.join(","),
        databases = ?store.names(),
        group_commit = cfg.group_commit,
    );
    let mut server = Server {
        cfg,
        store,
        stats: Stats {
            commit_us: Histogram::with_bounds(COMMIT_US_BOUNDS),
            commit_writes: Histogram::with_bounds(COMMIT_WRITES_BOUNDS),
            ..Stats::default()
        },
        probe,
        failed: BTreeMap::new(),
    };
    // Each reply, its request's number, and the write it answers if any.
    type Pending = (Vec<u8>, Reply, u64, Option<(String, u64)>);
    let mut replies: Vec<Pending> = Vec::with_capacity(DRAIN_CAP);
    // Databases written this turn, and whether a write to it was durable.
    let mut written: BTreeMap<String, bool> = BTreeMap::new();
    // Durable writes per database this turn: one fdatasync's group.
    let mut group: BTreeMap<String, u64> = BTreeMap::new();
    // Wake up at least this often to notice a shutdown request.
    sock.set_rcvtimeo(100)?;
    while !shutdown.load(Ordering::Relaxed) {
        while replies.len() < DRAIN_CAP {
            // Block for the first request of a turn, then take what is queued.
            let flags = if replies.is_empty() { 0 } else { zmq::DONTWAIT };
            let parts = match sock.recv_multipart(flags) {
                Ok(p) => p,
                // EINTR: a signal (SIGTERM) arrived; the loop condition checks it.
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => break,
                Err(e) => return Err(e.into()),
            };
            // A DEALER peer sends exactly one frame; ROUTER prepends its identity.
            let mut parts = parts.into_iter();
            let (Some(ident), Some(frame), None) = (parts.next(), parts.next(), parts.next())
            else {
                server.stats.errors += 1;
                tracing::debug!(event = "request_rejected", reason = "not one frame");
                continue;
            };
            let (reply, sync) = server.handle(&frame);
            let mut applied = None;
            if let Some(w) = sync {
                if w.durable && !server.cfg.group_commit {
                    server.commit(&w.db, true, 1);
                } else {
                    if w.durable {
                        *group.entry(w.db.clone()).or_default() += 1;
                    }
                    *written.entry(w.db.clone()).or_default() |= w.durable;
                }
                applied = Some((w.db, w.generation));
            }
            replies.push((ident, reply, server.stats.requests, applied));
        }
        for (db, durable) in std::mem::take(&mut written) {
            let writes = group.remove(&db).unwrap_or(0);
            server.commit(&db, durable, writes);
        }
        for (ident, mut reply, seq, applied) in replies.drain(..) {
            server.settle(&mut reply, applied);
            let bytes = encode_reply(&reply);
            // A vanished client is not an error: ROUTER drops its reply.
            sock.send_multipart([ident, bytes], 0)?;
            server.emit(ProbeEvent::Replied { seq });
        }
        server.failed.clear();
    }
    drop(sock);
    server.store.close()?;
    tracing::info!(
        event = "escalator_stopped",
        requests = server.stats.requests
    );
    Ok(())
}
