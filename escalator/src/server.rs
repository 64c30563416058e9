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

use crate::engine::{LevelDbOptions, ScanLimit};
use crate::error::EscalatorError;
use crate::etcd_store::EtcdStore;
use crate::frame::{self, BodyRef, DbRefRef};
use crate::keys::bounds;
use crate::store::{Backend, Store};
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
    /// Keep the databases in etcd instead of LevelDB (an HA tower).
    pub etcd: Option<EtcdStore>,
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
            etcd: None,
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

/// A write applied (or staged) during a loop turn.
struct Written<'a> {
    db: &'a str,
    durable: bool,
    /// The engine's generation when applied: if the engine dropped its
    /// instance since (a failed write or sync), this write went with it.
    generation: u64,
}

/// A database written during a loop turn.
struct TurnDb {
    name: String,
    /// Some write still needs a flush (or a sync) at the end of the turn.
    commit: bool,
    /// Some write needs a sync, and how many: one fdatasync's group.
    durable: bool,
    writes: u64,
}

/// The databases written during a loop turn, in first-written order.
#[derive(Default)]
struct Turn {
    dbs: Vec<TurnDb>,
}

impl Turn {
    /// Notes a write to `name`; returns the database's index in the turn.
    fn note(&mut self, name: &str, commit: bool, durable: bool) -> usize {
        let i = match self.dbs.iter().position(|d| d.name == name) {
            Some(i) => i,
            None => {
                self.dbs.push(TurnDb {
                    name: name.to_owned(),
                    commit: false,
                    durable: false,
                    writes: 0,
                });
                self.dbs.len() - 1
            }
        };
        let d = &mut self.dbs[i];
        d.commit |= commit;
        d.durable |= durable && commit;
        d.writes += u64::from(durable && commit);
        i
    }
}

/// One request of a turn, kept until its reply leaves. Slots are reused
/// from turn to turn: their messages and reply buffer keep their memory.
struct Slot {
    ident: zmq::Message,
    frame: zmq::Message,
    /// The encoded reply.
    out: Vec<u8>,
    id: u64,
    seq: u64,
    /// The write it answers: its database's index in the turn, generation.
    applied: Option<(usize, u64)>,
}

/// Bytes a slot keeps between turns: a big range page or batch must not
/// stay pinned in each of thousands of idle slots.
const SLOT_KEEP: usize = 16 << 10;

impl Slot {
    /// Lets go of what a big request or reply left in the slot.
    fn shrink(&mut self) {
        if self.out.capacity() > SLOT_KEEP {
            self.out = Vec::with_capacity(256);
        }
        if self.frame.len() > SLOT_KEEP {
            self.frame = zmq::Message::new();
        }
    }

    fn new() -> Self {
        Self {
            ident: zmq::Message::new(),
            frame: zmq::Message::new(),
            out: Vec::with_capacity(256),
            id: 0,
            seq: 0,
            applied: None,
        }
    }
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
    /// The full key (prefix included) of the hot request being served.
    key: Vec<u8>,
}

fn fault(kind: FaultKind, message: impl Into<String>) -> Fault {
    Fault::new(kind, message)
}

fn check_key(db: &DbRef, key: &[u8]) -> Result<Vec<u8>, Fault> {
    let mut full = Vec::new();
    full_key_into(&mut full, &db.prefix, key)?;
    Ok(full)
}

/// Writes `prefix` + `key` into `out`, refusing a key over the limit.
fn full_key_into(out: &mut Vec<u8>, prefix: &[u8], key: &[u8]) -> Result<(), Fault> {
    let len = prefix.len() + key.len();
    if len > MAX_KEY {
        return Err(fault(
            FaultKind::TooLarge,
            format!("key of {len} bytes (prefix included) exceeds {MAX_KEY}"),
        ));
    }
    out.clear();
    out.extend_from_slice(prefix);
    out.extend_from_slice(key);
    Ok(())
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
    fn execute<'b>(
        &mut self,
        body: &'b RequestBody,
    ) -> (Result<Response, Fault>, Option<Written<'b>>) {
        let durable = body.is_durable_write();
        let (db, ops) = match body {
            RequestBody::Put { db, key, value, .. } => {
                let op = BatchOp::Put {
                    key: key.clone(),
                    value: value.clone(),
                };
                (db, vec![op])
            }
            RequestBody::Delete { db, key, .. } => (db, vec![BatchOp::Delete { key: key.clone() }]),
            RequestBody::Batch { db, ops, .. } => (db, ops.clone()),
            other => return (self.read(other), None),
        };
        match self.try_write(db, ops) {
            Ok(generation) => (
                Ok(Response::Done),
                Some(written(&db.name, durable, generation)),
            ),
            Err(f) => (Err(self.write_failed(&db.name, f)), None),
        }
    }

    /// Requests that write nothing to a database.
    fn read(&mut self, body: &RequestBody) -> Result<Response, Fault> {
        match body {
            RequestBody::Ping => Ok(Response::Pong),
            RequestBody::Stats => {
                let mut s = self.stats.clone();
                s.databases = u32::try_from(self.store.len()).unwrap_or(u32::MAX);
                Ok(Response::Stats(s))
            }
            RequestBody::Create { name, exist_ok } => {
                self.store.create(name, *exist_ok).map(|()| Response::Done)
            }
            RequestBody::Open { db } => self.store.get_mut(&db.name).map(|_| Response::Done),
            RequestBody::Get { db, key } => self.get(&db.name, &db.prefix, key, false),
            RequestBody::Exists { db, key } => self.get(&db.name, &db.prefix, key, true),
            RequestBody::Range { db, spec } => self.range(db, spec),
            RequestBody::Put { .. } | RequestBody::Delete { .. } | RequestBody::Batch { .. } => {
                Err(fault(FaultKind::BadRequest, "a write is not a read"))
            }
        }
    }

    /// A get, or an exists when `exists`.
    fn get(
        &mut self,
        db: &str,
        prefix: &[u8],
        key: &[u8],
        exists: bool,
    ) -> Result<Response, Fault> {
        full_key_into(&mut self.key, prefix, key)?;
        let e = self.store.get_mut(db)?;
        let v = e.get(&self.key).map_err(storage)?;
        Ok(if exists {
            Response::Exists(v.is_some())
        } else {
            Response::Value(v)
        })
    }

    /// Executes a request decoded borrowed from its frame ([`frame`]).
    /// Puts and deletes are staged: they reach LevelDB together, as one
    /// batch, before the next read or at the end of the turn.
    fn execute_hot<'b>(
        &mut self,
        body: &BodyRef<'b>,
    ) -> (Result<Response, Fault>, Option<Written<'b>>) {
        let (db, key, value, durable) = match body {
            BodyRef::Get { db, key } => {
                self.apply_staged();
                return (self.get(db.name, db.prefix, key, false), None);
            }
            BodyRef::Exists { db, key } => {
                self.apply_staged();
                return (self.get(db.name, db.prefix, key, true), None);
            }
            BodyRef::Put {
                db,
                key,
                value,
                durable,
            } => (db, key, Some(*value), *durable),
            BodyRef::Delete { db, key, durable } => (db, key, None, *durable),
        };
        match self.stage(db, key, value) {
            Ok(generation) => (
                Ok(Response::Done),
                Some(written(db.name, durable, generation)),
            ),
            Err(f) => (Err(self.write_failed(db.name, f)), None),
        }
    }

    fn stage(&mut self, db: &DbRefRef<'_>, key: &[u8], value: Option<&[u8]>) -> Result<u64, Fault> {
        if let Some(v) = value {
            check_value(v)?;
        }
        full_key_into(&mut self.key, db.prefix, key)?;
        let engine = self.store.get_mut(db.name)?;
        let generation = engine.generation();
        engine.stage(&self.key, value).map_err(storage)?;
        Ok(generation)
    }

    /// Applies every staged write, so that what follows reads them.
    fn apply_staged(&mut self) {
        let failed = &mut self.failed;
        self.store.apply_staged(|name, e| {
            tracing::warn!(event = "write_failed", db = name, error = %e);
            failed.insert(name.to_owned(), e.to_string());
        });
    }

    /// Remembers why a write to `db` failed when the storage failed.
    fn write_failed(&mut self, db: &str, f: Fault) -> Fault {
        if f.kind == FaultKind::Storage {
            self.failed.insert(db.to_owned(), f.message.clone());
        }
        f
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

    /// Decodes and executes one frame, encodes its reply into `out`, and
    /// notes in `turn` what must reach the disk before the reply is sent.
    /// Returns the request's id and the write it made, if any.
    fn handle(
        &mut self,
        frame: &[u8],
        out: &mut Vec<u8>,
        turn: &mut Turn,
    ) -> (u64, Option<(usize, u64)>) {
        self.stats.requests += 1;
        let (id, result, (applied, durable)) = if let Some(req) = frame::decode_hot(frame) {
            let (r, w) = self.execute_hot(&req.body);
            (req.id, r, self.record(turn, w))
        } else {
            self.apply_staged();
            match vigie_wire::decode::<Request>(frame) {
                Ok(req) => {
                    let (r, w) = self.execute(&req.body);
                    (req.id, r, self.record(turn, w))
                }
                Err(e) => {
                    // Answer with the request's id when at least that decodes.
                    let id = vigie_wire::decode::<RequestHead>(frame).map_or(0, |h| h.id);
                    let kind = if id == 0 {
                        FaultKind::Malformed
                    } else {
                        FaultKind::BadRequest
                    };
                    (id, Err(fault(kind, e.to_string())), (None, false))
                }
            }
        };
        if let Err(f) = &result {
            self.stats.errors += 1;
            tracing::debug!(event = "request_rejected", id, kind = ?f.kind, reason = %f.message);
        }
        let seq = self.stats.requests;
        self.emit(ProbeEvent::Applied { seq, durable });
        frame::encode_reply_into(out, &Reply { id, body: result });
        (id, applied)
    }

    /// Notes a write in the turn; without group commit a durable write is
    /// synced at once, alone.
    /// Returns the write's place in the turn, and whether it was durable.
    fn record(&mut self, turn: &mut Turn, w: Option<Written<'_>>) -> (Option<(usize, u64)>, bool) {
        let Some(w) = w else {
            return (None, false);
        };
        if w.durable {
            self.stats.durable_writes += 1;
        }
        let alone = w.durable && !self.cfg.group_commit;
        if alone {
            self.commit(w.db, true, 1);
        }
        let i = turn.note(w.db, !alone, w.durable);
        (Some((i, w.generation)), w.durable)
    }

    /// Brings every write of the turn to the disk: one flush, or one
    /// fdatasync shared by all its durable writes, per database.
    fn finish_turn(&mut self, turn: &Turn) {
        self.apply_staged();
        for d in turn.dbs.iter().filter(|d| d.commit) {
            self.commit(&d.name, d.durable, d.writes);
        }
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
    fn settle(&mut self, slot: &mut Slot, turn: &Turn) {
        let Some((i, generation)) = slot.applied else {
            return;
        };
        let Some(db) = turn.dbs.get(i).map(|d| d.name.as_str()) else {
            return;
        };
        let now = self.store.get_mut(db).map(|e| e.generation());
        if now.is_ok_and(|g| g == generation) {
            return;
        }
        let why = self
            .failed
            .get(db)
            .map_or("the database failed in the same turn", String::as_str);
        self.stats.errors += 1;
        let body = Err(fault(
            FaultKind::Storage,
            format!(
                "write to {db:?} not acknowledged: {why}; it is applied whole or not at all, \
                 and nothing acknowledged was lost"
            ),
        ));
        frame::encode_reply_into(&mut slot.out, &Reply { id: slot.id, body });
    }
}

fn written(db: &str, durable: bool, generation: u64) -> Written<'_> {
    Written {
        db,
        durable,
        generation,
    }
}

/// The buckets of the commit histograms (microseconds; writes per
/// fdatasync), chosen around what a disk's fdatasync costs (0.1 to 100 ms)
/// and the group sizes the benchmark sees.
const COMMIT_US_BOUNDS: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];
const COMMIT_WRITES_BOUNDS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/// Runs the server until `shutdown` is set, then syncs and closes every
/// database. Binds all endpoints before returning an error-free start.
pub fn serve(
    cfg: ServerConfig,
    shutdown: Arc<AtomicBool>,
    probe: Option<Probe>,
) -> Result<(), EscalatorError> {
    let backend = match cfg.etcd.clone() {
        Some(etcd) => Backend::Etcd(etcd),
        None => Backend::LevelDb(cfg.leveldb),
    };
    let store = Store::open(&cfg.data_dir, backend)?;
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
        key: Vec::with_capacity(MAX_KEY),
    };
    // Slots of the turn: reused, so a turn allocates nothing per request.
    let mut slots: Vec<Slot> = Vec::new();
    let mut turn = Turn::default();
    // Wake up at least this often to notice a shutdown request.
    sock.set_rcvtimeo(100)?;
    while !shutdown.load(Ordering::Relaxed) {
        let used = server.drain(&sock, &mut slots, &mut turn)?;
        server.finish_turn(&turn);
        for slot in &mut slots[..used] {
            server.settle(slot, &turn);
            // A vanished client is not an error: ROUTER drops its reply.
            sock.send(&slot.ident[..], zmq::SNDMORE)?;
            sock.send(&slot.out[..], 0)?;
            server.emit(ProbeEvent::Replied { seq: slot.seq });
            slot.shrink();
        }
        turn.dbs.clear();
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

impl Server {
    /// Takes every request waiting on the socket (blocking for the first,
    /// up to [`DRAIN_CAP`]) and handles each; returns how many slots hold
    /// a reply to send.
    fn drain(
        &mut self,
        sock: &zmq::Socket,
        slots: &mut Vec<Slot>,
        turn: &mut Turn,
    ) -> Result<usize, EscalatorError> {
        let mut used = 0;
        while used < DRAIN_CAP {
            if used == slots.len() {
                slots.push(Slot::new());
            }
            let slot = &mut slots[used];
            let flags = if used == 0 { 0 } else { zmq::DONTWAIT };
            match receive(sock, slot, flags) {
                Ok(true) => {}
                Ok(false) => {
                    self.stats.errors += 1;
                    tracing::debug!(event = "request_rejected", reason = "not one frame");
                    continue;
                }
                // EINTR: a signal (SIGTERM) arrived; the loop condition checks it.
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => break,
                Err(e) => return Err(e.into()),
            }
            let (id, applied) = self.handle(&slot.frame, &mut slot.out, turn);
            slot.id = id;
            slot.seq = self.stats.requests;
            slot.applied = applied;
            used += 1;
        }
        Ok(used)
    }
}

/// Receives one request into `slot`: the peer's identity, then its one
/// frame. `Ok(false)`: the message was not exactly one frame (dropped).
fn receive(sock: &zmq::Socket, slot: &mut Slot, flags: i32) -> Result<bool, zmq::Error> {
    sock.recv(&mut slot.ident, flags)?;
    if !slot.ident.get_more() {
        return Ok(false);
    }
    // The other parts of a message arrive with its first.
    sock.recv(&mut slot.frame, 0)?;
    let mut one = true;
    while slot.frame.get_more() {
        one = false;
        sock.recv(&mut slot.frame, 0)?;
    }
    Ok(one)
}
