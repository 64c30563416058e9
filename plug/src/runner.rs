//! A plug process: one host, its SUB and PUSH sockets, and a heartbeat
//! thread that keeps the host alive in the referee's eyes even while a
//! long step runs.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_wire::tower::{host_topic, PlugEvent, Published};

use crate::beat::HeartbeatSnapshot;
use crate::drive::{drive, Handler};
use crate::error::PlugError;
use crate::plug::Plug;

#[derive(Debug, Clone)]
pub struct PlugConfig {
    /// The referee's PULL endpoint (events go there).
    pub events: String,
    /// The referee's PUB endpoint (orders come from there).
    pub orders: String,
    pub heartbeat: Duration,
    /// Host metrics and logs (none for simulated hosts).
    pub observe: Option<crate::observer::ObserverConfig>,
}

/// Sends without blocking: with the referee away, the report stays in the
/// outbox and is sent again later.
pub fn send(sock: &zmq::Socket, ev: &PlugEvent) {
    match vigie_wire::encode(ev) {
        Ok(frame) => {
            if let Err(e) = sock.send(frame, zmq::DONTWAIT) {
                tracing::debug!(event = "send_deferred", error = %e);
            }
        }
        Err(e) => tracing::error!(event = "encode_failed", error = %e),
    }
}

pub fn push_socket(ctx: &zmq::Context, ep: &str) -> Result<zmq::Socket, PlugError> {
    let s = ctx.socket(zmq::PUSH)?;
    s.set_sndhwm(100_000)?;
    s.set_linger(2_000)?;
    s.set_reconnect_ivl(100)?;
    s.set_reconnect_ivl_max(2_000)?;
    s.connect(ep)?;
    Ok(s)
}

pub fn sub_socket(ctx: &zmq::Context, ep: &str) -> Result<zmq::Socket, PlugError> {
    let s = ctx.socket(zmq::SUB)?;
    s.set_maxmsgsize(vigie_wire::limits::MAX_FRAME as i64)?;
    s.set_rcvhwm(100_000)?;
    s.set_reconnect_ivl(100)?;
    s.set_reconnect_ivl_max(2_000)?;
    s.connect(ep)?;
    Ok(s)
}

/// Hands every message the SUB socket holds to `handle`, without blocking.
pub fn drain_published(
    sub: &zmq::Socket,
    mut handle: impl FnMut(Published) -> Result<(), PlugError>,
) -> Result<(), PlugError> {
    loop {
        let parts = match sub.recv_multipart(zmq::DONTWAIT) {
            Ok(p) => p,
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        if let Some(p) = decode_published(parts) {
            handle(p)?;
        }
    }
}

/// Decodes a PUB message: topic frame, then the message.
pub fn decode_published(parts: Vec<Vec<u8>>) -> Option<Published> {
    let [_topic, frame] = <[Vec<u8>; 2]>::try_from(parts).ok()?;
    match vigie_wire::decode::<Published>(&frame) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(event = "order_rejected", reason = %e);
            None
        }
    }
}

/// Runs the plug until `shutdown` is set (SIGTERM). Stopping: the plug
/// tells the referee at once (its heartbeat says it refuses orders, so
/// nothing more is dispatched to it), finishes the step in flight, starts
/// no other — the change's steps done are undone and it ends `rolled_back`
/// with `stopped` — then waits a little for its last reports to be
/// acknowledged.
pub fn run(cfg: PlugConfig, plug: Plug, shutdown: Arc<AtomicBool>) -> Result<(), PlugError> {
    let mut plug = plug.stop_on(shutdown.clone());
    let ctx = zmq::Context::new();
    let sub = sub_socket(&ctx, &cfg.orders)?;
    sub.set_subscribe(&host_topic(plug.host()))?;
    let push = push_socket(&ctx, &cfg.events)?;
    let host = plug.host().to_owned();

    let mut out = |ev: PlugEvent| send(&push, &ev);
    // Recover first: heartbeats then carry the journal's incarnation.
    plug.recover(&mut out)?;
    let beat = HeartbeatSnapshot::new(&plug);
    // Beats until the very end: while the plug stops, the referee must
    // still count it online (its last reports are coming) and know it
    // takes no more orders.
    let done = Arc::new(AtomicBool::new(false));
    // However `run` ends (an error too), the beats stop with it.
    let _stop_beats = StopBeats(done.clone());
    let heart = {
        let (ctx, beat, stop, done, ep) = (
            ctx.clone(),
            beat.clone(),
            shutdown.clone(),
            done.clone(),
            cfg.events.clone(),
        );
        std::thread::spawn(move || -> Result<(), PlugError> {
            let push = push_socket(&ctx, &ep)?;
            push.set_linger(0)?;
            while !done.load(Ordering::Relaxed) {
                send(&push, &beat.beat(stop.load(Ordering::Relaxed)));
                std::thread::sleep(cfg.heartbeat);
            }
            Ok(())
        })
    };

    let observer = cfg
        .observe
        .clone()
        .map(|o| spawn_observer(&ctx, &cfg, &host, o, done.clone()));
    let healer = cfg.observe.as_ref().map(|o| {
        let beat = beat.clone();
        crate::heal::spawn(
            &host,
            &o.root,
            o.logs.clone(),
            o.heal.clone(),
            move || beat.busy(),
            done.clone(),
        )
    });

    tracing::info!(event = "plug_started", host = %host, orders = %cfg.orders, events = %cfg.events);
    let inbox = |handle: Handler<'_>| {
        match sub.poll(zmq::POLLIN, 100) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        drain_published(&sub, handle)
    };
    drive(&mut plug, &beat, &shutdown, inbox, &mut out)?;
    done.store(true, Ordering::Relaxed);
    let _ = heart.join();
    if let Some(o) = observer {
        let _ = o.join();
    }
    if let Some(h) = healer {
        let _ = h.join();
    }
    tracing::info!(event = "plug_stopped", host = %host, unacked = plug.unacked());
    Ok(())
}

/// The observer's thread: its own SUB on the host's topic (it takes the
/// logs requests, the main loop the orders) and its own PUSH, so logs are
/// answered and metrics sent while a step runs.
fn spawn_observer(
    ctx: &zmq::Context,
    cfg: &PlugConfig,
    host: &str,
    o: crate::observer::ObserverConfig,
    done: Arc<AtomicBool>,
) -> std::thread::JoinHandle<Result<(), PlugError>> {
    let (ctx, orders, events, host) = (
        ctx.clone(),
        cfg.orders.clone(),
        cfg.events.clone(),
        host.to_owned(),
    );
    std::thread::spawn(move || -> Result<(), PlugError> {
        // Said when it happens, not at the join: until the plug stops,
        // its host has no samples and no logs answers.
        let ended = observe(&ctx, &orders, &events, &host, o, &done);
        if let Err(e) = &ended {
            tracing::error!(event = "observer_stopped", host = %host, error = %e);
        }
        ended
    })
}

/// The observer thread's loop (see `spawn_observer`).
fn observe(
    ctx: &zmq::Context,
    orders: &str,
    events: &str,
    host: &str,
    o: crate::observer::ObserverConfig,
    done: &AtomicBool,
) -> Result<(), PlugError> {
    let sub = sub_socket(ctx, orders)?;
    sub.set_subscribe(&host_topic(host))?;
    let push = push_socket(ctx, events)?;
    push.set_linger(0)?;
    let mut observer = crate::observer::Observer::new(host, o);
    while !done.load(Ordering::Relaxed) {
        match sub.poll(zmq::POLLIN, 200) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        drain_published(&sub, |p| {
            if let Published::LogsRequest(req) = p {
                if let Some(ev) = observer.answer(req) {
                    send(&push, &ev);
                }
            }
            Ok(())
        })?;
        if let Some(ev) = observer.tick(Instant::now()) {
            send(&push, &ev);
        }
    }
    Ok(())
}

/// Sets the heartbeat thread's flag when dropped: a plug that returns
/// early on an error must not leave a thread beating for it.
struct StopBeats(Arc<AtomicBool>);

impl Drop for StopBeats {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}
