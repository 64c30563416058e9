//! The ZAP handler (ZeroMQ RFC 27): libzmq asks it, for every CURVE
//! handshake on the front door, whether the client's public key may in.
//! Only accepted agents' keys and operators not revoked are; an unknown key is reported as pending (an
//! operator may accept it), and refused like a revoked one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::MajordomoError;
use crate::keys::z85;
use crate::registry::Registry;
use crate::throttle::Throttle;

/// A key that knocked without being known: (public, address).
pub type Knock = (String, String);

pub fn bind(ctx: &zmq::Context) -> Result<zmq::Socket, MajordomoError> {
    let rep = ctx.socket(zmq::REP)?;
    rep.set_rcvtimeo(100)?;
    rep.set_linger(0)?;
    rep.bind("inproc://zeromq.zap.01")?;
    Ok(rep)
}

fn reply(
    rep: &zmq::Socket,
    req_id: &[u8],
    code: &str,
    text: &str,
    user: &str,
) -> Result<(), zmq::Error> {
    rep.send_multipart(
        [
            &b"1.0"[..],
            req_id,
            code.as_bytes(),
            text.as_bytes(),
            user.as_bytes(),
            b"",
        ],
        0,
    )
}

/// Answers handshakes until `stop` is set.
pub fn run(
    rep: zmq::Socket,
    registry: Registry,
    knocks: Sender<Knock>,
    stop: Arc<AtomicBool>,
) -> Result<(), MajordomoError> {
    // Refused handshakes are logged a few times per address and window,
    // then counted (`handshakes_refused`): knocking costs little log.
    let mut logs = Throttle::new(Duration::from_secs(10), 5, 50, Instant::now());
    while !stop.load(Ordering::Relaxed) {
        if let Some(s) = logs.roll(Instant::now()) {
            tracing::warn!(
                event = "handshakes_refused",
                suppressed = s.events,
                sources = s.sources
            );
        }
        let frames = match rep.recv_multipart(0) {
            Ok(f) => f,
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        // version, request id, domain, address, identity, mechanism, key
        let get = |i: usize| frames.get(i).map(Vec::as_slice).unwrap_or_default();
        let req_id = get(1);
        let address = String::from_utf8_lossy(get(3)).into_owned();
        let key: Option<[u8; 32]> = get(6).try_into().ok();
        let (Some(key), b"CURVE") = (key, get(5)) else {
            reply(&rep, req_id, "400", "CURVE only", "")?;
            continue;
        };
        let public = z85(&key);
        if registry.peer(&public).is_some() {
            tracing::debug!(event = "handshake_accepted", public = %public, address = %address);
            reply(&rep, req_id, "200", "OK", &public)?;
            continue;
        }
        let refusal = registry.refusal(&public);
        let reason = refusal.unwrap_or("unknown");
        if logs.allow(address.clone(), Instant::now()) {
            tracing::warn!(event = "handshake_refused", public = %public, address = %address, reason);
        }
        if refusal.is_none() {
            let _ = knocks.send((public.clone(), address));
        }
        reply(&rep, req_id, "400", reason, "")?;
    }
    Ok(())
}
