//! The operator's side of the referee's API: calls over a DEALER socket,
//! and a watcher of change updates over SUB.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vigie_wire::tower::{
    change_topic, ApiAnswer, ApiCall, ApiFault, ApiReply, ApiRequest, Caller, ChangeView,
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
    #[error("no answer from the referee at {endpoint} within {after:?}")]
    Timeout { endpoint: String, after: Duration },
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    #[error("after {after:?}, {count} changes are not final: {open}")]
    NotFinal {
        after: Duration,
        count: usize,
        open: String,
    },
}

pub struct ApiClient {
    _ctx: zmq::Context,
    sock: zmq::Socket,
    endpoint: String,
    caller: Caller,
    next_id: u64,
    timeout: Duration,
}

impl ApiClient {
    pub fn connect(endpoint: &str, caller: Caller) -> Result<Self, ClientError> {
        let ctx = zmq::Context::new();
        let sock = ctx.socket(zmq::DEALER)?;
        sock.set_linger(0)?;
        sock.connect(endpoint)?;
        Ok(Self {
            _ctx: ctx,
            sock,
            endpoint: endpoint.to_owned(),
            caller,
            next_id: 1,
            timeout: Duration::from_secs(30),
        })
    }

    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    /// One call, waiting for its answer. Not resent on timeout: a submit
    /// must not be applied twice.
    pub fn call(&mut self, call: ApiCall) -> Result<ApiAnswer, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let req = ApiRequest {
            id,
            caller: self.caller.clone(),
            call,
        };
        self.sock.send(vigie_wire::encode(&req)?, 0)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    endpoint: self.endpoint.clone(),
                    after: self.timeout,
                });
            }
            self.sock
                .set_rcvtimeo(i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1))?;
            let frame = match self.sock.recv_bytes(0) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let reply: ApiReply = vigie_wire::decode(&frame)?;
            if reply.id == id {
                return Ok(reply.body?);
            }
        }
    }

    /// Follows `ids` until every one is final: subscribes to their updates
    /// first, then reads their current state, then applies the updates the
    /// referee publishes. After a quiet second it reads the open ones again:
    /// an update published before the subscription took effect is not lost.
    /// An update older than what was read never replaces a final state.
    /// `on_view(previous, new)` sees every new view. Fails after `timeout`.
    pub fn follow(
        &mut self,
        orders: &str,
        ids: &[String],
        timeout: Option<Duration>,
        mut on_view: impl FnMut(Option<&ChangeView>, &ChangeView),
    ) -> Result<Vec<ChangeView>, ClientError> {
        let watcher = Watcher::connect(orders, ids)?;
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
                for v in self.changes(ApiCall::Status {
                    change: Some(id),
                    limit: 1,
                })? {
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
                if let Some(v) = watcher.next(quiet - now)? {
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
            self.sock
                .set_rcvtimeo(i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1))?;
            let parts = match self.sock.recv_multipart(0) {
                Ok(p) => p,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let Some(frame) = parts.get(1) else { continue };
            if let Published::Update(v) = vigie_wire::decode::<Published>(frame)? {
                return Ok(Some(v));
            }
        }
    }
}
