//! The launcher's lifecycle socket as the referee reads it: a SUB on its
//! health snapshot only, the first snapshot awaited at start, the later
//! ones drained every turn into the core (`core/health.rs` keeps them).

use vigie_wire::lifecycle::{LifecycleEvent, HEALTH_TOPIC};

use crate::core::state::Core;

/// The SUB socket on the launcher's lifecycle PUB, subscribed to the
/// health snapshot only.
pub(crate) fn subscribe(ctx: &zmq::Context, endpoint: &str) -> Result<zmq::Socket, zmq::Error> {
    let s = ctx.socket(zmq::SUB)?;
    s.set_maxmsgsize(vigie_wire::limits::MAX_FRAME as i64)?;
    s.set_subscribe(HEALTH_TOPIC.as_bytes())?;
    s.connect(endpoint)?;
    Ok(s)
}

/// Waits (at most `within`) for the launcher's first snapshot, so that
/// a referee that says it started can answer `TowerStatus` and refuse
/// what needs a daemon that is down: the launcher answers a subscription
/// within its 100 ms loop.
pub(crate) fn first_snapshot(
    sock: &zmq::Socket,
    tower: &mut Core,
    within: std::time::Duration,
) -> Result<(), zmq::Error> {
    let deadline = std::time::Instant::now() + within;
    while !tower.health().known() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            tracing::warn!(
                event = "health_unknown",
                waited_ms = within.as_millis() as u64
            );
            return Ok(());
        }
        let mut items = [sock.as_poll_item(zmq::POLLIN)];
        match zmq::poll(&mut items, left.as_millis().clamp(1, 100) as i64) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(e),
        }
        drain(sock, tower)?;
    }
    Ok(())
}

/// Applies every snapshot the socket holds, without waiting.
pub(crate) fn drain(sock: &zmq::Socket, tower: &mut Core) -> Result<(), zmq::Error> {
    loop {
        match sock.recv_multipart(zmq::DONTWAIT) {
            Ok(parts) => {
                let Some(frame) = parts.get(1) else { continue };
                match vigie_wire::decode::<LifecycleEvent>(frame) {
                    Ok(ev) => tower.lifecycle_event(&ev),
                    Err(e) => tracing::warn!(event = "health_rejected", reason = %e),
                }
            }
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
