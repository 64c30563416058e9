//! The operator's link to the tower: calls and watched updates over a
//! CURVE DEALER to the majordomo, with the operator's own key. A refused
//! key or a wrong tower key is an error at once, not a silent retry.

use std::time::{Duration, Instant};

use vigie_referee::{ClientError, Incoming, Link};
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::tower::ApiCall;

use crate::door::{curve_dealer, read_monitor, Handshake};
use crate::error::MajordomoError;
use crate::keys::KeyPair;

pub struct FrontLink {
    _ctx: zmq::Context,
    dealer: zmq::Socket,
    monitor: zmq::Socket,
    endpoint: String,
    /// Act in this tenant instead of the operator's own.
    tenant: Option<String>,
}

impl FrontLink {
    pub fn connect(
        tower: &str,
        tower_key: &[u8; 32],
        keys: &KeyPair,
        tenant: Option<String>,
    ) -> Result<Self, MajordomoError> {
        let ctx = zmq::Context::new();
        let (dealer, monitor) = curve_dealer(&ctx, tower_key, keys)?;
        dealer.set_linger(0)?;
        dealer.connect(tower)?;
        Ok(Self {
            _ctx: ctx,
            dealer,
            monitor,
            endpoint: tower.to_owned(),
            tenant,
        })
    }
}

fn zmq_err(e: zmq::Error) -> ClientError {
    ClientError::Zmq(e)
}

impl Link for FrontLink {
    fn send(&mut self, id: u64, call: &ApiCall, watch: bool) -> Result<(), ClientError> {
        let msg = FrontIn::Call {
            id,
            call: call.clone(),
            tenant: self.tenant.clone(),
            watch,
        };
        self.dealer
            .send(vigie_wire::encode(&msg)?, 0)
            .map_err(zmq_err)
    }

    fn recv(&mut self, timeout: Duration) -> Result<Option<Incoming>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(h) = read_monitor(&self.monitor) {
                if matches!(h, Handshake::KeyRefused | Handshake::TowerKeyWrong) {
                    return Err(ClientError::Door(format!(
                        "{}: {}",
                        self.endpoint,
                        h.explain("operator")
                    )));
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let mut items = [
                self.dealer.as_poll_item(zmq::POLLIN),
                self.monitor.as_poll_item(zmq::POLLIN),
            ];
            let ms = i64::try_from(left.as_millis()).unwrap_or(i64::MAX).max(1);
            match zmq::poll(&mut items, ms) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let frame = match self.dealer.recv_bytes(zmq::DONTWAIT) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            match vigie_wire::decode::<FrontOut>(&frame)? {
                FrontOut::Reply(r) => return Ok(Some(Incoming::Reply(r))),
                FrontOut::Update(v) => return Ok(Some(Incoming::Update(v))),
                FrontOut::Refused { reason } => {
                    return Err(ClientError::Door(format!("the tower refused: {reason}")))
                }
                FrontOut::Revoked => {
                    return Err(ClientError::Door(
                        "this operator's key is revoked".to_owned(),
                    ))
                }
                FrontOut::Ping | FrontOut::Published(_) => {}
            }
        }
    }

    fn endpoint(&self) -> &str {
        &self.endpoint
    }
}
