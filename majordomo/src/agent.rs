//! `vigie agent`: a plug on a remote machine. It connects out to the
//! majordomo over CurveZMQ (no inbound port on the host), sends its
//! heartbeats and reports, and runs the orders relayed to it. It reconnects
//! with back-off when the tower goes away, knocks again after a refused
//! handshake with a doubling, jittered wait (`backoff.rs`), and says
//! clearly when the tower refuses it: a wrong tower key would otherwise leave libzmq retrying
//! silently forever. Revoked, it stops talking to the tower; what it
//! deployed keeps running.
//!
//! Two threads, as ZeroMQ sockets are not shared: the door (the caller's
//! thread) owns the DEALER and does everything that must not wait for a
//! step — heartbeats from a [`HeartbeatSnapshot`], host samples, logs
//! answers, the monitor and knocking again; the plug runs in a thread of
//! its own, which gets orders, acknowledgements and incarnations from the
//! door and sends its reports back, over an inproc PAIR (the door's poll
//! wakes on both at once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigie_plug::{HeartbeatSnapshot, Plug, PlugError};
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::tower::{PlugEvent, Published};

use crate::door::{connect_doors, curve_dealer, disconnect_doors, read_monitor, Handshake};
use crate::error::MajordomoError;
use crate::keys::KeyPair;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The majordomo, e.g. `tcp://192.0.2.1:7110`; a tower group's front
    /// doors comma-separated.
    pub tower: String,
    /// The tower's public key (Z85 bytes decoded).
    pub tower_key: [u8; 32],
    pub keys: KeyPair,
    pub heartbeat: Duration,
    /// Failed handshakes in a row, without one success, before giving up.
    pub max_refusals: u32,
    /// Host metrics and logs.
    pub observe: Option<vigie_plug::ObserverConfig>,
}

/// Between the door and the plug's thread.
const PLUG_PAIR: &str = "inproc://agent-plug";
/// The longest the door sleeps in a poll.
const POLL_MAX: Duration = Duration::from_millis(100);

/// Sends a frame without blocking: not connected, the plug's outbox
/// resends reports; heartbeats and samples just go on.
fn forward(sock: &zmq::Socket, frame: &[u8]) {
    if let Err(e) = sock.send(frame, zmq::DONTWAIT) {
        tracing::debug!(event = "send_deferred", error = %e);
    }
}

fn send(sock: &zmq::Socket, ev: PlugEvent) {
    match vigie_wire::encode(&FrontIn::Plug(ev)) {
        Ok(frame) => forward(sock, &frame),
        Err(e) => tracing::error!(event = "encode_failed", error = %e),
    }
}

pub fn run(cfg: AgentConfig, plug: Plug, shutdown: Arc<AtomicBool>) -> Result<(), MajordomoError> {
    let ctx = zmq::Context::new();
    let mut plug = plug.stop_on(shutdown.clone());
    let host = plug.host().to_owned();
    let (dealer, mon) = curve_dealer(&ctx, &cfg.tower_key, &cfg.keys)?;
    connect_doors(&dealer, &cfg.tower)?;
    // Recovery first, before any heartbeat: they carry its incarnation.
    plug.recover(&mut |ev| send(&dealer, ev))?;
    let beat = HeartbeatSnapshot::new(&plug);
    let pair = ctx.socket(zmq::PAIR)?;
    pair.set_sndhwm(10_000)?;
    // Orders the plug's thread did not take when it ended are the
    // referee's to send again.
    pair.set_linger(0)?;
    pair.bind(PLUG_PAIR)?;
    let worker = spawn_plug(&ctx, plug, beat.clone(), shutdown.clone())?;
    // The health watch: replicas keep being checked (and healed) whether
    // the tower is reachable or not.
    let healer = cfg.observe.as_ref().map(|o| {
        let beat = beat.clone();
        vigie_plug::heal::spawn(
            &host,
            &o.root,
            o.logs.clone(),
            o.heal.clone(),
            move || beat.busy(),
            shutdown.clone(),
        )
    });
    tracing::info!(event = "agent_started", host = %host, tower = %cfg.tower, public = %cfg.keys.public_z85());
    let door = Door {
        cfg: &cfg,
        host: &host,
        dealer: &dealer,
        mon: &mon,
        pair: &pair,
        beat: &beat,
        shutdown: &shutdown,
    };
    let ended = door.run();
    // However the door ended (revoked, refused, an error), the plug stops
    // as on SIGTERM: the step in flight finishes and the change is rolled
    // back. Its thread ends before the sockets close (the context waits
    // for every socket).
    shutdown.store(true, Ordering::Relaxed);
    let worked = match worker.join() {
        Ok(r) => r.map_err(MajordomoError::from),
        Err(_) => Err(MajordomoError::PlugThread),
    };
    if let Some(h) = healer {
        let _ = h.join();
    }
    ended?;
    worked?;
    tracing::info!(event = "agent_stopped", host = %host);
    Ok(())
}

/// The plug's thread: its end of the PAIR, the plug driven by what the
/// door relays. It says when it ends (an empty frame), however it ends.
fn spawn_plug(
    ctx: &zmq::Context,
    mut plug: Plug,
    beat: HeartbeatSnapshot,
    stop: Arc<AtomicBool>,
) -> Result<JoinHandle<Result<(), PlugError>>, MajordomoError> {
    let pair = ctx.socket(zmq::PAIR)?;
    pair.set_sndhwm(10_000)?;
    pair.set_linger(0)?;
    pair.connect(PLUG_PAIR)?;
    Ok(std::thread::spawn(move || {
        let end = SaysWhenDone(pair);
        let pair = &end.0;
        let inbox = |handle: vigie_plug::Handler<'_>| -> Result<(), PlugError> {
            match pair.poll(zmq::POLLIN, POLL_MAX.as_millis() as i64) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            loop {
                let frame = match pair.recv_bytes(zmq::DONTWAIT) {
                    Ok(f) => f,
                    Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(()),
                    Err(e) => return Err(e.into()),
                };
                // The door decoded it already: only its relays come here.
                if let Ok(FrontOut::Published(p)) = vigie_wire::decode::<FrontOut>(&frame) {
                    handle(p)?;
                }
            }
        };
        vigie_plug::drive(&mut plug, &beat, &stop, inbox, &mut |ev| send(pair, ev))
    }))
}

/// The plug's end of the PAIR; dropped (the thread ends, a panic too), it
/// tells the door.
struct SaysWhenDone(zmq::Socket);

impl Drop for SaysWhenDone {
    fn drop(&mut self) {
        if let Err(e) = self.0.send(&[][..], zmq::DONTWAIT) {
            tracing::error!(event = "send_failed", error = %e);
        }
    }
}

/// The thread that owns the DEALER.
struct Door<'a> {
    cfg: &'a AgentConfig,
    host: &'a str,
    dealer: &'a zmq::Socket,
    mon: &'a zmq::Socket,
    pair: &'a zmq::Socket,
    beat: &'a HeartbeatSnapshot,
    shutdown: &'a AtomicBool,
}

impl Door<'_> {
    /// Until the plug's thread ends (it stops on SIGTERM, after flushing
    /// its last reports), or the tower cuts us off.
    fn run(&self) -> Result<(), MajordomoError> {
        let (cfg, host, dealer) = (self.cfg, self.host, self.dealer);
        let mut refusals = 0u32;
        let mut ever_up = false;
        // libzmq does not knock again after a refused handshake: we do, with
        // back-off, since an operator may accept a pending key at any time.
        let mut knock_again: Option<Instant> = None;
        let mut next_beat = Instant::now();
        let mut said_stopping = false;
        let mut observer = cfg
            .observe
            .clone()
            .map(|o| vigie_plug::Observer::new(host, o));
        loop {
            let stopping = self.shutdown.load(Ordering::Relaxed);
            // "Stopping" is said at once, not at the next beat.
            if Instant::now() >= next_beat || (stopping && !said_stopping) {
                send(dealer, self.beat.beat(stopping));
                said_stopping = stopping;
                next_beat = Instant::now() + cfg.heartbeat;
            }
            let wait = next_beat
                .saturating_duration_since(Instant::now())
                .min(POLL_MAX);
            let mut items = [
                dealer.as_poll_item(zmq::POLLIN),
                self.mon.as_poll_item(zmq::POLLIN),
                self.pair.as_poll_item(zmq::POLLIN),
            ];
            match zmq::poll(&mut items, wait.as_millis() as i64) {
                Ok(_) | Err(zmq::Error::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            while let Some(link) = read_monitor(self.mon) {
                match link {
                    Handshake::Up => {
                        ever_up = true;
                        refusals = 0;
                        tracing::info!(event = "agent_connected", host = %host);
                    }
                    // Already waiting to knock again: a late word on the
                    // attempt we dropped, not a new one.
                    Handshake::KeyRefused | Handshake::TowerKeyWrong if knock_again.is_some() => {}
                    Handshake::KeyRefused | Handshake::TowerKeyWrong => {
                        refusals += 1;
                        let why = link.explain("agent");
                        tracing::warn!(event = "agent_refused", host = %host, reason = %why, attempt = refusals);
                        // A pending key may be accepted any time: only a tower
                        // that never let us in is given up on.
                        if !ever_up
                            && refusals >= cfg.max_refusals
                            && link == Handshake::TowerKeyWrong
                        {
                            return Err(MajordomoError::Refused(refusals, why));
                        }
                        // Stop libzmq's own reconnecting (every 100 ms or so
                        // after a failed handshake): we knock again, later.
                        disconnect_doors(dealer, &cfg.tower);
                        let backoff = crate::backoff::knock_delay(refusals, rand::random::<f64>());
                        tracing::info!(event = "agent_backoff", host = %host, attempt = refusals, wait_ms = backoff.as_millis() as u64);
                        knock_again = Some(Instant::now() + backoff);
                    }
                    Handshake::Other => {}
                }
            }
            if self.relay_reports()? {
                return Ok(());
            }
            self.tower_said(&mut observer)?;
            if knock_again.is_some_and(|t| Instant::now() >= t) {
                knock_again = None;
                connect_doors(dealer, &cfg.tower)?;
            }
            if let Some(ev) = observer.as_mut().and_then(|o| o.tick(Instant::now())) {
                send(dealer, ev);
                tracing::debug!(event = "sample_sent", host = %host);
            }
        }
    }

    /// What the tower sent: the plug's orders relayed, logs requests
    /// answered by the observer; revoked ends the agent.
    fn tower_said(
        &self,
        observer: &mut Option<vigie_plug::Observer>,
    ) -> Result<(), MajordomoError> {
        let (host, dealer) = (self.host, self.dealer);
        loop {
            let frame = match dealer.recv_bytes(zmq::DONTWAIT) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => break,
                Err(e) => return Err(e.into()),
            };
            match vigie_wire::decode::<FrontOut>(&frame) {
                // The plug's: relayed as they came.
                Ok(FrontOut::Published(
                    Published::Order(_)
                    | Published::ReportAck { .. }
                    | Published::Incarnation { .. },
                )) => forward(self.pair, &frame),
                Ok(FrontOut::Published(Published::LogsRequest(req))) => {
                    if let Some(ev) = observer.as_mut().and_then(|o| o.answer(req)) {
                        send(dealer, ev);
                    }
                }
                Ok(FrontOut::Refused { reason }) => {
                    tracing::warn!(event = "agent_message_refused", reason = %reason)
                }
                Ok(FrontOut::Revoked) => {
                    tracing::error!(event = "agent_revoked", host = %host);
                    return Err(MajordomoError::Revoked);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(event = "tower_message_rejected", reason = %e),
            }
        }
        Ok(())
    }

    /// Relays the plug's reports; true once its thread said it ended.
    fn relay_reports(&self) -> Result<bool, MajordomoError> {
        loop {
            match self.pair.recv_bytes(zmq::DONTWAIT) {
                Ok(f) if f.is_empty() => return Ok(true),
                Ok(f) => forward(self.dealer, &f),
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => return Ok(false),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
