//! How calls reach the tower: a [`Link`] sends them and brings back
//! replies and watched changes' updates; [`Direct`] is the link straight
//! to the referee's sockets (the majordomo's is `vigie_majordomo::operator`).

use std::time::{Duration, Instant};

use vigie_wire::tower::{ApiCall, ApiReply, ApiRequest, Caller, ChangeView, IdemKey};

use crate::watcher::Watcher;
use crate::ClientError;

/// What comes back over a link.
#[derive(Debug)]
pub enum Incoming {
    Reply(ApiReply),
    Update(ChangeView),
}

/// How calls reach the tower.
pub trait Link {
    /// Sends a call. `watch`, for `Status` of one change or `StatusOf` of
    /// several: also deliver their updates from now on. `idem`: the call's idempotency key.
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
        let watched = match (watch, call) {
            (
                true,
                ApiCall::Status {
                    change: Some(c), ..
                },
            ) => std::slice::from_ref(c),
            (true, ApiCall::StatusOf { changes }) => changes.as_slice(),
            _ => &[],
        };
        match &self.watcher {
            Some(w) => {
                for c in watched {
                    w.subscribe(c)?;
                }
            }
            None if !watched.is_empty() => {
                self.watcher = Some(Watcher::connect(&self.orders, watched)?)
            }
            None => {}
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
