//! The operator's side of the tower's API. An [`ApiClient`] makes calls
//! and follows changes over a [`Link`]: [`Direct`] to the referee (inside
//! the tower: the majordomo, tests, benchmarks), or through the majordomo
//! (the operator's CLI; see `vigie_majordomo::operator`).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use vigie_wire::tower::{
    change_topic, ApiAnswer, ApiCall, ApiFault, ApiReply, ApiRequest, Caller, ChangeView, IdemKey,
    Published, ALL_CHANGES_TOPIC,
};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("zeromq: {0}")]
    Zmq(#[from] zmq::Error),
    #[error(transparent)]
    Wire(#[from] vigie_wire::WireError),
    #[error("{0}")]
    Refused(#[from] ApiFault),
    #[error("no answer from the tower at {endpoint} within {after:?}")]
    Timeout { endpoint: String, after: Duration },
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("after {after:?}, {count} changes are not final: {open}")]
    NotFinal {
        after: Duration,
        count: usize,
        open: String,
    },
    /// The front door turned the connection down (key, handshake).
    #[error("{0}")]
    Door(String),
}

/// What comes back over a link.
#[derive(Debug)]
pub enum Incoming {
    Reply(ApiReply),
    Update(ChangeView),
}

/// How calls reach the tower.
pub trait Link {
    /// Sends a call. `watch`, for `Status` of one change: also deliver that
    /// change's updates from now on. `idem`: the call's idempotency key.
    fn send(
        &mut self,
        id: u64,
        call: &ApiCall,
        watch: bool,
        idem: Option<&IdemKey>,
    ) -> Result<(), ClientError>;
    /// The next reply or watched update, or `None` after `timeout`.
    fn recv(&mut self, timeout: Duration) -> Result<Option<Incoming>, ClientError>;
    /// Where the calls go, for messages.
    fn endpoint(&self) -> &str;
}

/// Waits at most `left` for one of `items`; an interrupted wait is a short one.
pub fn poll_for(items: &mut [zmq::PollItem], left: Duration) -> Result<(), ClientError> {
    let ms = i64::try_from(left.as_millis()).unwrap_or(i64::MAX).max(1);
    match zmq::poll(items, ms) {
        Ok(_) | Err(zmq::Error::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn rcvtimeo(sock: &zmq::Socket, left: Duration) -> Result<(), zmq::Error> {
    sock.set_rcvtimeo(i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1))
}

/// Straight to the referee's sockets, stating the caller: only for what
/// runs inside the tower.
pub struct Direct {
    _ctx: zmq::Context,
    api: zmq::Socket,
    endpoint: String,
    orders: String,
    caller: Caller,
    watcher: Option<Watcher>,
}

impl Direct {
    pub fn connect(api: &str, orders: &str, caller: Caller) -> Result<Self, ClientError> {
        let ctx = zmq::Context::new();
        let sock = ctx.socket(zmq::DEALER)?;
        sock.set_linger(0)?;
        sock.connect(api)?;
        Ok(Self {
            _ctx: ctx,
            api: sock,
            endpoint: api.to_owned(),
            orders: orders.to_owned(),
            caller,
            watcher: None,
        })
    }
}

impl Link for Direct {
    fn send(
        &mut self,
        id: u64,
        call: &ApiCall,
        watch: bool,
        idem: Option<&IdemKey>,
    ) -> Result<(), ClientError> {
        if let (
            true,
            ApiCall::Status {
                change: Some(c), ..
            },
        ) = (watch, call)
        {
            match &self.watcher {
                Some(w) => w.subscribe(c)?,
                None => {
                    self.watcher = Some(Watcher::connect(&self.orders, std::slice::from_ref(c))?)
                }
            }
        }
        let req = ApiRequest {
            id,
            caller: self.caller.clone(),
            call: call.clone(),
            idem: idem.cloned(),
        };
        self.api.send(vigie_wire::encode(&req)?, 0)?;
        Ok(())
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Incoming>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut items = vec![self.api.as_poll_item(zmq::POLLIN)];
            if let Some(w) = &self.watcher {
                items.push(w.sock.as_poll_item(zmq::POLLIN));
            }
            poll_for(&mut items, left)?;
            if let Ok(frame) = self.api.recv_bytes(zmq::DONTWAIT) {
                return Ok(Some(Incoming::Reply(vigie_wire::decode(&frame)?)));
            }
            if let Some(v) = self
                .watcher
                .as_ref()
                .map(Watcher::try_next)
                .transpose()?
                .flatten()
            {
                return Ok(Some(Incoming::Update(v)));
            }
        }
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// An unanswered call is sent again after this long.
const RESEND_AFTER: Duration = Duration::from_secs(5);

/// A fresh idempotency key: 128 random bits in hex.
pub fn new_idem_key() -> IdemKey {
    let text = format!("{:032x}", rand::random::<u128>());
    // 32 hex digits always make a valid key.
    IdemKey::try_from(text).unwrap_or_else(|_| unreachable!("hex is a valid key"))
}

pub struct ApiClient {
    link: Box<dyn Link>,
    next_id: u64,
    /// How long a call that only reads waits for its answer.
    timeout: Duration,
    /// How long a call that changes something waits (resent meanwhile).
    change_timeout: Duration,
    /// Updates that arrived while waiting for a reply.
    updates: VecDeque<ChangeView>,
}

impl ApiClient {
    /// A client inside the tower, straight to the referee.
    pub fn direct(api: &str, orders: &str, caller: Caller) -> Result<Self, ClientError> {
        Ok(Self::over(Direct::connect(api, orders, caller)?))
    }

    pub fn over(link: impl Link + 'static) -> Self {
        Self {
            link: Box::new(link),
            next_id: 1,
            timeout: Duration::from_secs(30),
            change_timeout: Duration::from_secs(30),
            updates: VecDeque::new(),
        }
    }

    /// The same wait for every call.
    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
        self.change_timeout = t;
    }

    /// The read and change timeouts.
    pub fn timeouts(&self) -> (Duration, Duration) {
        (self.timeout, self.change_timeout)
    }

    /// A wait for reads and a longer one for calls that change something:
    /// those are resent every few seconds while unanswered, so a short
    /// read timeout still tells quickly that the tower is down.
    pub fn set_timeouts(&mut self, read: Duration, change: Duration) {
        self.timeout = read;
        self.change_timeout = change;
    }

    /// One call, waiting for its answer. A call that changes things
    /// carries a fresh idempotency key, so it is resent while unanswered
    /// (a lost reply, a restarting tower) without acting twice.
    pub fn call(&mut self, call: ApiCall) -> Result<ApiAnswer, ClientError> {
        let key = call.mutates().then(new_idem_key);
        self.call_with(call, false, key.as_ref())
    }

    /// A call with the caller's own idempotency key: the same key again
    /// gets the first answer.
    pub fn call_idempotent(
        &mut self,
        call: ApiCall,
        key: &IdemKey,
    ) -> Result<ApiAnswer, ClientError> {
        self.call_with(call, false, Some(key))
    }

    fn call_watching(&mut self, call: ApiCall, watch: bool) -> Result<ApiAnswer, ClientError> {
        self.call_with(call, watch, None)
    }

    fn call_with(
        &mut self,
        call: ApiCall,
        watch: bool,
        idem: Option<&IdemKey>,
    ) -> Result<ApiAnswer, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.link.send(id, &call, watch, idem)?;
        let timeout = if call.mutates() {
            self.change_timeout
        } else {
            self.timeout
        };
        let deadline = Instant::now() + timeout;
        let mut resend = Instant::now() + RESEND_AFTER;
        loop {
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    endpoint: self.link.endpoint().to_owned(),
                    after: timeout,
                });
            }
            // Reads are harmless twice; changes only with their key.
            if now >= resend && (idem.is_some() || !call.mutates()) {
                self.link.send(id, &call, watch, idem)?;
                resend = now + RESEND_AFTER;
            }
            let wait = left.min(
                resend
                    .saturating_duration_since(now)
                    .max(Duration::from_millis(1)),
            );
            match self.link.recv(wait)? {
                Some(Incoming::Reply(r)) if r.id == id => return Ok(r.body?),
                Some(Incoming::Update(v)) => self.updates.push_back(v),
                Some(Incoming::Reply(_)) | None => {}
            }
        }
    }

    /// The next watched update, or `None` after `timeout`.
    fn next_update(&mut self, timeout: Duration) -> Result<Option<ChangeView>, ClientError> {
        if let Some(v) = self.updates.pop_front() {
            return Ok(Some(v));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.link.recv(left)? {
                Some(Incoming::Update(v)) => return Ok(Some(v)),
                Some(Incoming::Reply(_)) => {}
                None => return Ok(None),
            }
        }
    }

    /// Follows `ids` until every one is final: reads their current state
    /// while asking for their updates, then applies the updates the
    /// referee publishes. After a quiet second it reads the open ones again:
    /// an update published before the subscription took effect is not lost.
    /// An update older than what was read never replaces a final state.
    /// `on_view(previous, new)` sees every new view. Fails after `timeout`.
    pub fn follow(
        &mut self,
        ids: &[String],
        timeout: Option<Duration>,
        mut on_view: impl FnMut(Option<&ChangeView>, &ChangeView),
    ) -> Result<Vec<ChangeView>, ClientError> {
        let started = Instant::now();
        let mut views: HashMap<String, ChangeView> = HashMap::new();
        let mut take = |v: ChangeView, views: &mut HashMap<String, ChangeView>| {
            let old = views.get(&v.id);
            if old.is_some_and(|o| o.state.is_final()) || old == Some(&v) {
                return;
            }
            on_view(old, &v);
            views.insert(v.id.clone(), v);
        };
        let open = |views: &HashMap<String, ChangeView>| -> Vec<String> {
            ids.iter()
                .filter(|id| !views.get(*id).is_some_and(|v| v.state.is_final()))
                .cloned()
                .collect()
        };
        loop {
            for id in open(&views) {
                let answer = self.call_watching(
                    ApiCall::Status {
                        change: Some(id),
                        limit: 1,
                    },
                    true,
                )?;
                let ApiAnswer::Changes(got) = answer else {
                    return Err(ClientError::Unexpected(format!("{answer:?}")));
                };
                for v in got {
                    take(v, &mut views);
                }
            }
            let quiet_until = |now: Instant| now + Duration::from_secs(1);
            let mut quiet = quiet_until(Instant::now());
            loop {
                let left = open(&views);
                if left.is_empty() {
                    return Ok(ids.iter().filter_map(|id| views.remove(id)).collect());
                }
                if let Some(t) = timeout.filter(|t| started.elapsed() >= *t) {
                    let open: Vec<String> = left
                        .iter()
                        .take(20)
                        .map(|id| {
                            format!(
                                "{id} ({})",
                                views.get(id).map_or("unknown", |v| v.state.word())
                            )
                        })
                        .collect();
                    return Err(ClientError::NotFinal {
                        after: t,
                        count: left.len(),
                        open: open.join(", "),
                    });
                }
                let now = Instant::now();
                if now >= quiet {
                    break;
                }
                if let Some(v) = self.next_update(quiet - now)? {
                    take(v, &mut views);
                    quiet = quiet_until(Instant::now());
                }
            }
        }
    }

    pub fn changes(&mut self, call: ApiCall) -> Result<Vec<ChangeView>, ClientError> {
        match self.call(call)? {
            ApiAnswer::Changes(v) | ApiAnswer::Submitted(v) => Ok(v),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }
}

/// Change updates as the referee publishes them (after storing them).
pub struct Watcher {
    _ctx: zmq::Context,
    sock: zmq::Socket,
}

impl Watcher {
    /// Watches the given changes, or every change when `changes` is empty.
    /// Subscribe before reading the current state, so nothing is missed.
    pub fn connect(orders: &str, changes: &[String]) -> Result<Self, ClientError> {
        let ctx = zmq::Context::new();
        let sock = ctx.socket(zmq::SUB)?;
        sock.set_rcvhwm(1_000_000)?;
        if changes.is_empty() {
            sock.set_subscribe(ALL_CHANGES_TOPIC)?;
        }
        for c in changes {
            sock.set_subscribe(&change_topic(c))?;
        }
        sock.connect(orders)?;
        Ok(Self { _ctx: ctx, sock })
    }

    pub fn subscribe(&self, change: &str) -> Result<(), ClientError> {
        Ok(self.sock.set_subscribe(&change_topic(change))?)
    }

    /// The next update, or `None` after `timeout`.
    pub fn next(&self, timeout: Duration) -> Result<Option<ChangeView>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            rcvtimeo(&self.sock, left)?;
            let parts = match self.sock.recv_multipart(0) {
                Ok(p) => p,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            if let Some(v) = update_of(&parts)? {
                return Ok(Some(v));
            }
        }
    }

    /// The next update already received, without waiting.
    pub fn try_next(&self) -> Result<Option<ChangeView>, ClientError> {
        while let Ok(parts) = self.sock.recv_multipart(zmq::DONTWAIT) {
            if let Some(v) = update_of(&parts)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }
}

/// The change update in a published message (topic, message), if it is one.
fn update_of(parts: &[Vec<u8>]) -> Result<Option<ChangeView>, ClientError> {
    let Some(frame) = parts.get(1) else {
        return Ok(None);
    };
    match vigie_wire::decode::<Published>(frame)? {
        Published::Update(v) => Ok(Some(v)),
        _ => Ok(None),
    }
}
