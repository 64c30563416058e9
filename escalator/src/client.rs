//! The Escalator client: a plyvel-like API over one DEALER socket.
//!
//! Every request carries an id, so a caller can keep many in flight
//! ([`Database::put_async`] and friends, then [`Client::wait`]). A request
//! without a reply after the retry interval is sent again — every Escalator
//! request is idempotent — which is how a client rides over a server restart.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::error::EscalatorError;
use crate::frame;
use vigie_wire::escalator::{
    BatchOp, DbRef, Entry, Fault, RangeSpec, Request, RequestBody, Response, Stats,
};

/// One ZeroMQ context (one I/O thread) for all the clients of a process:
/// a context per client would cost a thread each.
fn shared_context() -> zmq::Context {
    static CTX: std::sync::OnceLock<zmq::Context> = std::sync::OnceLock::new();
    CTX.get_or_init(zmq::Context::new).clone()
}

struct Pending {
    frame: Vec<u8>,
    sent: Instant,
}

struct Conn {
    _ctx: zmq::Context,
    sock: zmq::Socket,
    endpoint: String,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    done: HashMap<u64, Result<Response, Fault>>,
    retry: Duration,
    deadline: Duration,
    /// No pending request is overdue before this instant: replies are
    /// taken without scanning every pending request for a resend.
    resend_due: Option<Instant>,
    /// The receive timeout the socket holds (set only when it changes).
    rcvtimeo: i32,
    /// The last reply received, its memory reused.
    incoming: zmq::Message,
}

/// A connection to one Escalator server. Cheap to clone; not `Send` (a
/// ZeroMQ socket belongs to one thread): open one client per thread.
#[derive(Clone)]
pub struct Client {
    conn: Rc<RefCell<Conn>>,
}

/// A request in flight; redeem it with [`Client::wait`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[must_use = "a ticket must be waited on to learn whether the request succeeded"]
pub struct Ticket(u64);

impl Client {
    /// Connects to `endpoint` (the connection itself is made in the
    /// background: a server that is not up yet is waited for).
    pub fn connect(endpoint: &str) -> Result<Self, EscalatorError> {
        let ctx = shared_context();
        let sock = ctx.socket(zmq::DEALER)?;
        sock.set_linger(0)?;
        sock.set_sndhwm(100_000)?;
        sock.set_rcvhwm(100_000)?;
        sock.set_reconnect_ivl(50)?;
        sock.set_reconnect_ivl_max(1_000)?;
        sock.connect(endpoint)?;
        Ok(Self {
            conn: Rc::new(RefCell::new(Conn {
                _ctx: ctx,
                sock,
                endpoint: endpoint.to_owned(),
                next_id: 1,
                pending: HashMap::new(),
                done: HashMap::new(),
                retry: Duration::from_millis(1_000),
                deadline: Duration::from_secs(30),
                resend_due: None,
                rcvtimeo: -1,
                incoming: zmq::Message::new(),
            })),
        })
    }

    /// How long before a request is sent again, and before giving up.
    pub fn set_timeouts(&self, retry: Duration, deadline: Duration) {
        let mut c = self.conn.borrow_mut();
        c.retry = retry;
        c.deadline = deadline;
    }

    pub fn endpoint(&self) -> String {
        self.conn.borrow().endpoint.clone()
    }

    /// Sends a request without waiting for its reply.
    pub fn send(&self, body: RequestBody) -> Result<Ticket, EscalatorError> {
        self.send_with(|id| Ok(vigie_wire::encode(&Request { id, body })?))
    }

    /// Sends the frame `encode` makes for the next request id.
    fn send_with(
        &self,
        encode: impl FnOnce(u64) -> Result<Vec<u8>, EscalatorError>,
    ) -> Result<Ticket, EscalatorError> {
        let mut c = self.conn.borrow_mut();
        let id = c.next_id;
        c.next_id += 1;
        let frame = encode(id)?;
        c.sock.send(&frame, 0)?;
        let sent = Instant::now();
        let due = sent + c.retry;
        c.resend_due = Some(c.resend_due.map_or(due, |d| d.min(due)));
        c.pending.insert(id, Pending { frame, sent });
        Ok(Ticket(id))
    }

    /// Waits for the reply to `ticket`, resending while none comes.
    pub fn wait(&self, ticket: Ticket) -> Result<Response, EscalatorError> {
        let started = Instant::now();
        let mut c = self.conn.borrow_mut();
        loop {
            if let Some(r) = c.done.remove(&ticket.0) {
                return r.map_err(EscalatorError::from);
            }
            if !c.pending.contains_key(&ticket.0) {
                return Err(EscalatorError::UnexpectedReply {
                    request: "wait",
                    got: format!("unknown ticket {}", ticket.0),
                });
            }
            let elapsed = started.elapsed();
            if elapsed >= c.deadline {
                c.pending.remove(&ticket.0);
                return Err(EscalatorError::Timeout {
                    endpoint: c.endpoint.clone(),
                    after: elapsed,
                });
            }
            let wait = c.retry.min(c.deadline - elapsed);
            let timeout_ms = i32::try_from(wait.as_millis()).unwrap_or(i32::MAX).max(1);
            c.receive_one(timeout_ms)?;
            c.resend_overdue()?;
        }
    }

    /// Sends and waits.
    pub fn call(&self, body: RequestBody) -> Result<Response, EscalatorError> {
        let t = self.send(body)?;
        self.wait(t)
    }

    pub fn ping(&self) -> Result<(), EscalatorError> {
        expect_done(self.call(RequestBody::Ping)?, "ping")
    }

    pub fn stats(&self) -> Result<Stats, EscalatorError> {
        match self.call(RequestBody::Stats)? {
            Response::Stats(s) => Ok(s),
            other => Err(unexpected("stats", other)),
        }
    }

    /// Creates a database if missing and returns a handle on it.
    pub fn create(&self, name: &str) -> Result<Database, EscalatorError> {
        let body = RequestBody::Create {
            name: name.to_owned(),
            exist_ok: true,
        };
        expect_done(self.call(body)?, "create")?;
        Ok(self.handle(DbRef::root(name)))
    }

    /// Returns a handle on an existing database (an error if it is missing).
    pub fn connect_db(&self, name: &str) -> Result<Database, EscalatorError> {
        let db = DbRef::root(name);
        expect_done(self.call(RequestBody::Open { db: db.clone() })?, "open")?;
        Ok(self.handle(db))
    }

    fn handle(&self, db: DbRef) -> Database {
        Database {
            client: self.clone(),
            db,
            durable: true,
        }
    }
}

impl Conn {
    /// Waits up to `timeout_ms` for one reply (a blocking receive costs
    /// fewer system calls than poll-then-receive on the lock-step path).
    fn receive_one(&mut self, timeout_ms: i32) -> Result<(), EscalatorError> {
        if self.rcvtimeo != timeout_ms {
            self.sock.set_rcvtimeo(timeout_ms)?;
            self.rcvtimeo = timeout_ms;
        }
        match self.sock.recv(&mut self.incoming, 0) {
            Ok(()) => {}
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        // A reply that does not decode, or answers a request already
        // answered (a resend's twin), is dropped.
        if let Ok(reply) = frame::decode_reply(&self.incoming) {
            if self.pending.remove(&reply.id).is_some() {
                self.done.insert(reply.id, reply.body);
            }
        }
        Ok(())
    }

    fn resend_overdue(&mut self) -> Result<(), EscalatorError> {
        let now = Instant::now();
        if self.resend_due.is_none_or(|due| now < due) {
            return Ok(());
        }
        let mut due: Option<Instant> = None;
        for p in self.pending.values_mut() {
            if now.duration_since(p.sent) >= self.retry {
                match self.sock.send(&p.frame, zmq::DONTWAIT) {
                    Ok(()) | Err(zmq::Error::EAGAIN) => p.sent = now,
                    Err(e) => return Err(e.into()),
                }
            }
            let next = p.sent + self.retry;
            due = Some(due.map_or(next, |d| d.min(next)));
        }
        self.resend_due = due;
        Ok(())
    }
}

fn unexpected(request: &'static str, got: Response) -> EscalatorError {
    EscalatorError::UnexpectedReply {
        request,
        got: format!("{got:?}"),
    }
}

fn expect_done(r: Response, request: &'static str) -> Result<(), EscalatorError> {
    match r {
        Response::Done | Response::Pong => Ok(()),
        other => Err(unexpected(request, other)),
    }
}

/// A database or a prefix sub-database of it. Handles are plain names, so
/// they stay valid when the server restarts.
#[derive(Clone)]
pub struct Database {
    client: Client,
    db: DbRef,
    durable: bool,
}

impl Database {
    pub fn name(&self) -> &str {
        &self.db.name
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A sub-database that sees only the keys under `prefix` (stripped).
    pub fn prefixed(&self, prefix: &[u8]) -> Database {
        let mut db = self.db.clone();
        db.prefix.extend_from_slice(prefix);
        Database {
            client: self.client.clone(),
            db,
            durable: self.durable,
        }
    }

    /// Writes through this handle wait for fdatasync (the default) or not.
    pub fn durable(mut self, durable: bool) -> Database {
        self.durable = durable;
        self
    }

    /// Drops the handle (the server keeps no per-handle state).
    pub fn close(self) {}

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, EscalatorError> {
        match self.client.wait(self.get_async(key)?)? {
            Response::Value(v) => Ok(v),
            other => Err(unexpected("get", other)),
        }
    }

    /// The values of `keys`, in their order, pipelined: `window` gets
    /// sent, then their answers awaited, window after window.
    pub fn get_many(
        &self,
        keys: &[Vec<u8>],
        window: usize,
    ) -> Result<Vec<Option<Vec<u8>>>, EscalatorError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(window.max(1)) {
            let tickets = chunk
                .iter()
                .map(|k| self.get_async(k))
                .collect::<Result<Vec<_>, _>>()?;
            for t in tickets {
                match self.client.wait(t)? {
                    Response::Value(v) => out.push(v),
                    other => return Err(unexpected("get", other)),
                }
            }
        }
        Ok(out)
    }

    pub fn get_async(&self, key: &[u8]) -> Result<Ticket, EscalatorError> {
        let body = frame::BodyRef::Get {
            db: frame::DbRefRef::of(&self.db),
            key,
        };
        self.client
            .send_with(|id| Ok(frame::encode_request(id, &body)?))
    }

    pub fn exists(&self, key: &[u8]) -> Result<bool, EscalatorError> {
        let body = frame::BodyRef::Exists {
            db: frame::DbRefRef::of(&self.db),
            key,
        };
        let t = self
            .client
            .send_with(|id| Ok(frame::encode_request(id, &body)?))?;
        match self.client.wait(t)? {
            Response::Exists(b) => Ok(b),
            other => Err(unexpected("exists", other)),
        }
    }

    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), EscalatorError> {
        expect_done(self.client.wait(self.put_async(key, value)?)?, "put")
    }

    pub fn put_async(&self, key: &[u8], value: &[u8]) -> Result<Ticket, EscalatorError> {
        let body = frame::BodyRef::Put {
            db: frame::DbRefRef::of(&self.db),
            key,
            value,
            durable: self.durable,
        };
        self.client
            .send_with(|id| Ok(frame::encode_request(id, &body)?))
    }

    pub fn delete(&self, key: &[u8]) -> Result<(), EscalatorError> {
        let body = frame::BodyRef::Delete {
            db: frame::DbRefRef::of(&self.db),
            key,
            durable: self.durable,
        };
        let t = self
            .client
            .send_with(|id| Ok(frame::encode_request(id, &body)?))?;
        expect_done(self.client.wait(t)?, "delete")
    }

    /// Starts an atomic batch.
    pub fn batch(&self) -> Batch {
        Batch {
            db: self.clone(),
            ops: Vec::new(),
        }
    }

    /// Every entry of a range, following pages until the end.
    pub fn range(&self, spec: RangeSpec) -> Result<Vec<Entry>, EscalatorError> {
        self.iter(spec).collect()
    }

    /// A lazy iterator over a range, one page (one request) at a time.
    pub fn iter(&self, spec: RangeSpec) -> RangeIter {
        RangeIter {
            db: self.clone(),
            spec: Some(spec),
            page: Vec::new().into_iter(),
        }
    }
}

/// Operations applied all together or not at all by [`Batch::write`].
pub struct Batch {
    db: Database,
    ops: Vec<BatchOp>,
}

impl Batch {
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push(BatchOp::Put {
            key: key.to_vec(),
            value: value.to_vec(),
        });
        self
    }

    pub fn delete(&mut self, key: &[u8]) -> &mut Self {
        self.ops.push(BatchOp::Delete { key: key.to_vec() });
        self
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn write(self) -> Result<(), EscalatorError> {
        let t = self.write_async()?;
        expect_done(self.db.client.wait(t)?, "batch")
    }

    pub fn write_async(&self) -> Result<Ticket, EscalatorError> {
        self.db.client.send(RequestBody::Batch {
            db: self.db.db.clone(),
            ops: self.ops.clone(),
            durable: self.db.durable,
        })
    }
}

pub struct RangeIter {
    db: Database,
    /// The rest of the range; `None` once the last page was fetched.
    spec: Option<RangeSpec>,
    page: std::vec::IntoIter<Entry>,
}

impl Iterator for RangeIter {
    type Item = Result<Entry, EscalatorError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.page.next() {
                return Some(Ok(e));
            }
            let mut spec = self.spec.take()?;
            let body = RequestBody::Range {
                db: self.db.db.clone(),
                spec: spec.clone(),
            };
            let (entries, resume) = match self.db.client.call(body) {
                Ok(Response::Page { entries, resume }) => (entries, resume),
                Ok(other) => return Some(Err(unexpected("range", other))),
                Err(e) => return Some(Err(e)),
            };
            if let Some(resume) = resume {
                if spec.reverse {
                    spec.stop = Some(resume);
                } else {
                    spec.start = Some(resume);
                }
                spec.limit = spec
                    .limit
                    .map(|l| l.saturating_sub(u32::try_from(entries.len()).unwrap_or(u32::MAX)));
                self.spec = Some(spec);
            }
            self.page = entries.into_iter();
        }
    }
}
