//! `vigie agent`: a plug on a remote machine. It connects out to the
//! majordomo over CurveZMQ (no inbound port on the host), sends its
//! heartbeats and reports, and runs the orders relayed to it. It reconnects
//! with back-off when the tower goes away, knocks again after a refused
//! handshake with a doubling, jittered wait (`backoff.rs`), and says
//! clearly when the tower refuses it: a wrong tower key would otherwise leave libzmq retrying
//! silently forever. Revoked, it stops talking to the tower; what it
//! deployed keeps running.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_plug::Plug;
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::tower::{PlugEvent, Published};

use crate::door::{curve_dealer, read_monitor, Handshake};
use crate::error::MajordomoError;
use crate::keys::KeyPair;

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The majordomo, e.g. `tcp://192.0.2.1:7110`.
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

fn send(dealer: &zmq::Socket, ev: PlugEvent) {
    match vigie_wire::encode(&FrontIn::Plug(ev)) {
        // Not connected: the outbox resends reports; heartbeats just go on.
        Ok(frame) => {
            let _ = dealer.send(frame, zmq::DONTWAIT);
        }
        Err(e) => tracing::error!(event = "encode_failed", error = %e),
    }
}

pub fn run(
    cfg: AgentConfig,
    mut plug: Plug,
    shutdown: Arc<AtomicBool>,
) -> Result<(), MajordomoError> {
    let ctx = zmq::Context::new();
    let host = plug.host().to_owned();
    let (dealer, mon) = curve_dealer(&ctx, &cfg.tower_key, &cfg.keys)?;
    dealer.connect(&cfg.tower)?;

    let mut out = |ev: PlugEvent| send(&dealer, ev);
    plug.recover(&mut out)?;
    tracing::info!(event = "agent_started", host = %host, tower = %cfg.tower, public = %cfg.keys.public_z85());
    let mut refusals = 0u32;
    let mut ever_up = false;
    // libzmq does not knock again after a refused handshake: we do, with
    // back-off, since an operator may accept a pending key at any time.
    let mut knock_again: Option<Instant> = None;
    let mut next_beat = Instant::now();
    // Driven from this loop (one DEALER): while a step runs, samples and
    // logs answers wait for it (see ARCHITECTURE.md, Known limits).
    let mut observer = cfg
        .observe
        .clone()
        .map(|o| vigie_plug::Observer::new(&host, o));
    while !shutdown.load(Ordering::Relaxed) {
        if Instant::now() >= next_beat {
            out(plug.heartbeat());
            next_beat = Instant::now() + cfg.heartbeat;
        }
        let mut items = [
            dealer.as_poll_item(zmq::POLLIN),
            mon.as_poll_item(zmq::POLLIN),
        ];
        match zmq::poll(&mut items, 100) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        while let Some(link) = read_monitor(&mon) {
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
                    if !ever_up && refusals >= cfg.max_refusals && link == Handshake::TowerKeyWrong
                    {
                        return Err(MajordomoError::Refused(refusals, why));
                    }
                    // Stop libzmq's own reconnecting (every 100 ms or so
                    // after a failed handshake): we knock again, later.
                    let _ = dealer.disconnect(&cfg.tower);
                    let backoff = crate::backoff::knock_delay(refusals, rand::random::<f64>());
                    tracing::info!(event = "agent_backoff", host = %host, attempt = refusals, wait_ms = backoff.as_millis() as u64);
                    knock_again = Some(Instant::now() + backoff);
                }
                Handshake::Other => {}
            }
        }
        loop {
            let frame = match dealer.recv_bytes(zmq::DONTWAIT) {
                Ok(f) => f,
                Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => break,
                Err(e) => return Err(e.into()),
            };
            match vigie_wire::decode::<FrontOut>(&frame) {
                Ok(FrontOut::Published(Published::Order(order))) => {
                    plug.on_order(order, &mut out)?
                }
                Ok(FrontOut::Published(Published::ReportAck { host: h, upto })) if h == host => {
                    plug.on_ack(upto)?
                }
                Ok(FrontOut::Published(Published::Incarnation {
                    host: h,
                    incarnation,
                })) => {
                    plug.on_incarnation(&h, incarnation)?;
                }
                Ok(FrontOut::Published(Published::LogsRequest(req))) => {
                    if let Some(ev) = observer.as_mut().and_then(|o| o.answer(req)) {
                        out(ev);
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
        if knock_again.is_some_and(|t| Instant::now() >= t) {
            knock_again = None;
            dealer.connect(&cfg.tower)?;
        }
        if let Some(ev) = observer.as_mut().and_then(|o| o.tick(Instant::now())) {
            out(ev);
        }
        // A plug that could not journal tries again (see `Plug::stall`).
        plug.retry_journal(Instant::now(), &mut out);
        plug.tick(Instant::now(), &mut out);
    }
    tracing::info!(event = "agent_stopped", host = %host);
    Ok(())
}
