//! The operator's side of the referee's API: calls over a DEALER socket,
//! and a watcher of change updates over SUB.

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
