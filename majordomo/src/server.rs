//! The majordomo's loop: the CURVE ROUTER facing the network, a SUB and a
//! PUSH towards the referee, and a DEALER to the referee's API for the
//! registry's "pending" knocks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_wire::front::{FrontIn, FrontOut, KeyState, KEYS_TOPIC};
use vigie_wire::tower::{host_topic, ApiCall, ApiRequest, Caller, PlugEvent, Published};

use crate::error::MajordomoError;
use crate::registry::Registry;

#[derive(Debug, Clone)]
pub struct MajordomoConfig {
    /// The front door, e.g. `tcp://0.0.0.0:7110`.
    pub bind: String,
    pub escalator: String,
    pub api: String,
    pub events: String,
    pub orders: String,
    /// The tower's secret key file (Z85).
    pub secret_key: PathBuf,
}

/// How often agents hear from the tower.
const PING: Duration = Duration::from_secs(1);

/// A connected agent.
struct Agent {
    routing_id: Vec<u8>,
    last_seen: Instant,
}

fn caller() -> Caller {
    Caller {
        tenant: "default".into(),
        operator: "majordomo".into(),
    }
}

struct Door {
    router: zmq::Socket,
    registry: Registry,
    agents: HashMap<String, Agent>,
}

impl Door {
    fn send(&self, routing_id: &[u8], msg: &FrontOut) {
        match vigie_wire::encode(msg) {
            // A peer that is gone: ROUTER drops the message.
            Ok(frame) => {
                if let Err(e) = self
                    .router
                    .send_multipart([routing_id, &frame], zmq::DONTWAIT)
                {
                    tracing::debug!(event = "send_dropped", error = %e);
                }
            }
            Err(e) => tracing::error!(event = "encode_failed", error = %e),
        }
    }

    /// One message from the front door: who sent it is the key libzmq
    /// authenticated (ZAP user id), never what the message says.
    fn inbound(&mut self, sub: &zmq::Socket, push: &zmq::Socket) -> Result<(), MajordomoError> {
        let id = self.router.recv_msg(zmq::DONTWAIT)?;
        let routing_id = id.to_vec();
        let mut parts = Vec::new();
        while self.router.get_rcvmore()? {
            parts.push(self.router.recv_msg(0)?);
        }
        let Some(mut payload) = parts.pop().filter(|_| parts.is_empty()) else {
            tracing::warn!(event = "frame_rejected", reason = "not one frame");
            return Ok(());
        };
        let public = payload
            .gets("User-Id")
            .map(str::to_owned)
            .unwrap_or_default();
        let Some(key) = self.registry.accepted(&public) else {
            // Revoked since the handshake: cut off.
            self.send(&routing_id, &FrontOut::Revoked);
            return Ok(());
        };
        let msg = match vigie_wire::decode::<FrontIn>(&payload) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(event = "frame_rejected", host = %key.host, reason = %e);
                self.send(
                    &routing_id,
                    &FrontOut::Refused {
                        reason: e.to_string(),
                    },
                );
                return Ok(());
            }
        };
        let FrontIn::Plug(ev) = msg;
        let host = match &ev {
            PlugEvent::Heartbeat { host, .. } => host,
            PlugEvent::Report(r) => &r.host,
        };
        if *host != key.host {
            let reason = format!("this key speaks for {}, not {host}", key.host);
            tracing::warn!(event = "frame_rejected", host = %key.host, reason = %reason);
            self.send(&routing_id, &FrontOut::Refused { reason });
            return Ok(());
        }
        let known = self.agents.insert(
            key.host.clone(),
            Agent {
                routing_id,
                last_seen: Instant::now(),
            },
        );
        if known.is_none() {
            sub.set_subscribe(&host_topic(&key.host))?;
            tracing::info!(event = "agent_connected", host = %key.host, public = %public);
        }
        let frame = vigie_wire::encode(&ev)?;
        if let Err(e) = push.send(frame, zmq::DONTWAIT) {
            tracing::warn!(event = "relay_deferred", host = %key.host, error = %e);
        }
        Ok(())
    }

    /// One message from the referee's PUB.
    fn outbound(&mut self, sub: &zmq::Socket) -> Result<(), MajordomoError> {
        let parts = sub.recv_multipart(zmq::DONTWAIT)?;
        let Some(frame) = parts.get(1) else {
            return Ok(());
        };
        let msg = match vigie_wire::decode::<Published>(frame) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(event = "order_rejected", reason = %e);
                return Ok(());
            }
        };
        match msg {
            Published::Key(rec) => {
                let revoked = rec.state == KeyState::Revoked;
                let host = rec.host.clone();
                self.registry.put(rec);
                if revoked {
                    if let Some(agent) = self.agents.remove(&host) {
                        self.send(&agent.routing_id, &FrontOut::Revoked);
                        sub.set_unsubscribe(&host_topic(&host))?;
                        tracing::warn!(event = "agent_cut", host = %host, reason = "revoked");
                    }
                }
            }
            Published::Order(ref o) => self.to_agent(&o.host.clone(), msg),
            Published::ReportAck { ref host, .. } => self.to_agent(&host.clone(), msg),
            Published::Update(_) => {}
        }
        Ok(())
    }

    fn to_agent(&self, host: &str, msg: Published) {
        if let Some(a) = self.agents.get(host) {
            self.send(&a.routing_id, &FrontOut::Published(msg));
        }
    }
}

pub fn serve(cfg: MajordomoConfig, shutdown: Arc<AtomicBool>) -> Result<(), MajordomoError> {
    let keys = crate::keys::read_secret(&cfg.secret_key)?;
    let db = vigie_escalator::Client::connect(&cfg.escalator)?.create("tower")?;
    let registry = Registry::load(&db)?;
    let ctx = zmq::Context::new();
    // The ZAP handler must be bound before the socket that uses it.
    let rep = crate::zap::bind(&ctx)?;
    let (knock_tx, knocks) = mpsc::channel();
    let zap = {
        let (registry, stop) = (registry.clone(), shutdown.clone());
        std::thread::spawn(move || crate::zap::run(rep, registry, knock_tx, stop))
    };
    let router = ctx.socket(zmq::ROUTER)?;
    router.set_curve_server(true)?;
    router.set_curve_secretkey(&keys.secret)?;
    router.set_zap_domain(crate::ZAP_DOMAIN)?;
    router.set_maxmsgsize(vigie_wire::limits::MAX_FRAME as i64)?;
    router.set_heartbeat_ivl(1_000)?;
    router.set_heartbeat_timeout(5_000)?;
    router.set_sndhwm(100_000)?;
    router.set_linger(0)?;
    router.bind(&cfg.bind)?;
    let sub = ctx.socket(zmq::SUB)?;
    sub.set_subscribe(KEYS_TOPIC)?;
    sub.connect(&cfg.orders)?;
    let push = ctx.socket(zmq::PUSH)?;
    push.set_sndhwm(100_000)?;
    push.connect(&cfg.events)?;
    let api = ctx.socket(zmq::DEALER)?;
    api.set_linger(0)?;
    api.connect(&cfg.api)?;
    tracing::info!(event = "majordomo_started", bind = %cfg.bind, public = %keys.public_z85());

    let mut door = Door {
        router,
        registry,
        agents: HashMap::new(),
    };
    let mut next_ping = Instant::now();
    let mut api_id = 0u64;
    while !shutdown.load(Ordering::Relaxed) {
        let mut items = [
            door.router.as_poll_item(zmq::POLLIN),
            sub.as_poll_item(zmq::POLLIN),
            api.as_poll_item(zmq::POLLIN),
        ];
        match zmq::poll(&mut items, 100) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        let (front, back, answers) = (
            items[0].is_readable(),
            items[1].is_readable(),
            items[2].is_readable(),
        );
        if front {
            loop {
                match door.inbound(&sub, &push) {
                    Ok(()) => {}
                    Err(MajordomoError::Zmq(zmq::Error::EAGAIN | zmq::Error::EINTR)) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        if back {
            loop {
                match door.outbound(&sub) {
                    Ok(()) => {}
                    Err(MajordomoError::Zmq(zmq::Error::EAGAIN | zmq::Error::EINTR)) => break,
                    Err(e) => return Err(e),
                }
            }
        }
        // The referee's answers to our knocks are only acknowledgements.
        while answers && api.recv_bytes(zmq::DONTWAIT).is_ok() {}
        while let Ok((public, address)) = knocks.try_recv() {
            api_id += 1;
            let req = ApiRequest {
                id: api_id,
                caller: caller(),
                call: ApiCall::KeyPending { public, address },
            };
            api.send(vigie_wire::encode(&req)?, zmq::DONTWAIT).ok();
        }
        if Instant::now() >= next_ping {
            next_ping = Instant::now() + PING;
            door.agents
                .retain(|_, a| a.last_seen.elapsed() < Duration::from_secs(30));
            for a in door.agents.values() {
                door.send(&a.routing_id, &FrontOut::Ping);
            }
        }
    }
    let _ = zap.join();
    tracing::info!(event = "majordomo_stopped");
    Ok(())
}
