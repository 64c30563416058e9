//! The loop that runs a plug from its orders until it is asked to stop,
//! then waits a little for its last reports to be acknowledged. Shared by
//! a plug process (`runner.rs`, orders from its SUB) and an agent's plug
//! thread (orders relayed by the thread that owns its DEALER): the sockets
//! are the caller's, behind `inbox` and `out`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use vigie_wire::tower::{PlugEvent, Published};

use crate::beat::HeartbeatSnapshot;
use crate::error::PlugError;
use crate::plug::{Plug, Sink};

/// How long a stopping plug waits for the referee to acknowledge its last
/// reports (they are journaled: what is not acknowledged is sent again at
/// the next start).
pub const FLUSH_FOR: Duration = Duration::from_secs(2);

/// Hands each message that came for the plug to its handler: waits up to
/// about 100 ms for the first, then takes what is there without blocking.
pub type Handler<'a> = &'a mut dyn FnMut(Published) -> Result<(), PlugError>;

/// Runs `plug` (recovered already) until `stop` is set: orders run to
/// their end (a stopping plug finishes the step in flight and rolls the
/// change back as `stopped`), acknowledgements and incarnations are
/// taken, lost reports resent; `beat` follows what the plug says. Then
/// waits up to [`FLUSH_FOR`] for the last reports' acknowledgement.
pub fn drive(
    plug: &mut Plug,
    beat: &HeartbeatSnapshot,
    stop: &AtomicBool,
    mut inbox: impl FnMut(Handler<'_>) -> Result<(), PlugError>,
    out: Sink,
) -> Result<(), PlugError> {
    let host = plug.host().to_owned();
    let mut out = |ev: PlugEvent| {
        beat.follow(&ev);
        out(ev)
    };
    while !stop.load(Ordering::Relaxed) {
        inbox(&mut |p| match p {
            Published::Order(order) => {
                plug.on_order(order, &mut out)?;
                beat.refresh(plug);
                Ok(())
            }
            Published::ReportAck { host: h, upto } if h == host => plug.on_ack(upto),
            Published::Incarnation {
                host: h,
                incarnation,
            } => plug.on_incarnation(&h, incarnation).map(drop),
            _ => Ok(()),
        })?;
        let now = Instant::now();
        plug.retry_journal(now, &mut out);
        plug.tick(now, &mut out);
        beat.refresh(plug);
    }
    let until = Instant::now() + FLUSH_FOR;
    while plug.unacked() > 0 && Instant::now() < until {
        inbox(&mut |p| match p {
            Published::ReportAck { host: h, upto } if h == host => plug.on_ack(upto),
            _ => Ok(()),
        })?;
        plug.tick(Instant::now(), &mut out);
    }
    Ok(())
}
