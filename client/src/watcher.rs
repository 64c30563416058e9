//! Change updates as the referee publishes them, on its PUB socket.

use std::time::{Duration, Instant};

use vigie_wire::tower::{change_topic, ChangeView, Published, ALL_CHANGES_TOPIC};

use crate::ClientError;

/// Change updates as the referee publishes them (after storing them).
pub struct Watcher {
    _ctx: zmq::Context,
    pub(crate) sock: zmq::Socket,
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

fn rcvtimeo(sock: &zmq::Socket, left: Duration) -> Result<(), zmq::Error> {
    sock.set_rcvtimeo(i32::try_from(left.as_millis()).unwrap_or(i32::MAX).max(1))
}
