//! The majordomo's loop: the CURVE ROUTER facing the network, a SUB and a
//! PUSH towards the referee, and a DEALER to the referee's API for
//! operators' calls and the registry's "pending" knocks.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_wire::front::{
    FrontIn, FrontOut, KeyRecord, KeyState, Knock, OperatorRecord, KEYS_TOPIC,
};
use vigie_wire::tower::{host_topic, ApiCall, ApiReply, ApiRequest, Caller, PlugEvent, Published};

use crate::calls::{Calls, Effect, OperatorCall};
use crate::error::MajordomoError;
use crate::registry::{Peer, Registry};
use crate::throttle::{Admit, FairBudget, Throttle};

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
    /// Unknown keys a minute recorded as pending, in all and per source
    /// (the setup's `limits:`).
    pub knocks_per_minute: u32,
    pub knocks_per_source: u32,
}

/// How often the door does its housekeeping (knocks, expiries).
const PING: Duration = Duration::from_secs(1);

/// How often an agent is told "the tower is here". Each ping is a CURVE
/// message the door encrypts and the agent decrypts, and the agent learns
/// nothing from it its own ZMTP heartbeat (answered by the door's libzmq)
/// does not tell it every second: at 10,000 agents a ping a second each
/// was a fifth of the door's messages (BENCHMARKS.md).
const AGENT_PING: Duration = Duration::from_secs(10);

/// An agent's heartbeat that says nothing new (the same frame as the last
/// one relayed) is relayed at most this often: the referee judges a host
/// by beats 3 s apart, and relaying both of an agent's beats a second
/// doubled the door's and the referee's work for nothing (BENCHMARKS.md).
const BEAT_RELAY: Duration = Duration::from_secs(1);

/// A connected agent.
struct Agent {
    routing_id: Vec<u8>,
    last_seen: Instant,
    /// When it was last pinged.
    pinged: Instant,
    /// The last heartbeat relayed to the referee, and when.
    beat: Option<(Vec<u8>, Instant)>,
}

/// Whether an agent's heartbeat goes to the referee: a beat that changed
/// (incarnation, busy, refusing, labels) at once, the same beat again
/// only once `BEAT_RELAY` has passed. Pure: tested alone.
fn relay_beat(last: Option<&(Vec<u8>, Instant)>, frame: &[u8], now: Instant) -> bool {
    match last {
        Some((f, at)) => f != frame || now.duration_since(*at) >= BEAT_RELAY,
        None => true,
    }
}

/// The door's own calls (knocks) are the tower's.
fn caller() -> Caller {
    Caller::internal(vigie_wire::ids::TOWER_TENANT, "majordomo")
}

/// A call the referee has not answered for this long is forgotten.
const CALL_EXPIRY: Duration = Duration::from_secs(120);

struct Door {
    router: zmq::Socket,
    sub: zmq::Socket,
    push: zmq::Socket,
    api: zmq::Socket,
    registry: Registry,
    db: vigie_escalator::Database,
    agents: HashMap<String, Agent>,
    calls: Calls,
    /// Refused frames, per peer.
    rejects: Throttle<Vec<u8>>,
    /// Unknown keys' knocks, shared fairly by source address.
    knocks: FairBudget<String>,
    /// Knocks that passed, sent to the referee as one batch a second.
    knocked: Vec<Knock>,
    knocks_dropped: u64,
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

    /// Refuses a frame: logged and answered a few times per peer and
    /// window, counted beyond (`frames_rejected`), so a flood of bad
    /// frames costs a bounded amount of log and traffic.
    fn refuse(&mut self, routing_id: &[u8], who: &str, reason: String) {
        if !self.rejects.allow(routing_id.to_vec(), Instant::now()) {
            return;
        }
        tracing::warn!(event = "frame_rejected", peer = who, reason = %reason);
        self.send(routing_id, &FrontOut::Refused { reason });
    }

    /// Ends the watches of operators who may no longer talk.
    fn prune_watches(&mut self) -> Result<(), MajordomoError> {
        let (cut, topics) = self.calls.prune();
        for peer in cut {
            tracing::warn!(event = "watch_cut", reason = "revoked");
            self.send(&peer, &FrontOut::Revoked);
        }
        for topic in topics {
            self.sub.set_unsubscribe(&topic)?;
        }
        Ok(())
    }

    /// One message from the front door: who sent it is the key libzmq
    /// authenticated (ZAP user id), never what the message says.
    fn inbound(&mut self) -> Result<(), MajordomoError> {
        let id = self.router.recv_msg(zmq::DONTWAIT)?;
        let routing_id = id.to_vec();
        let mut parts = Vec::new();
        while self.router.get_rcvmore()? {
            parts.push(self.router.recv_msg(0)?);
        }
        let Some(mut payload) = parts.pop().filter(|_| parts.is_empty()) else {
            if self.rejects.allow(routing_id, Instant::now()) {
                tracing::warn!(event = "frame_rejected", reason = "not one frame");
            }
            return Ok(());
        };
        let public = payload
            .gets("User-Id")
            .map(str::to_owned)
            .unwrap_or_default();
        let Some(peer) = self.registry.peer(&public) else {
            // Revoked since the handshake: cut off (told a few times, not
            // once per frame of a flood).
            if self.rejects.allow(routing_id.clone(), Instant::now()) {
                self.send(&routing_id, &FrontOut::Revoked);
            }
            return Ok(());
        };
        let who = match &peer {
            Peer::Agent(k) => k.host.clone(),
            Peer::Operator(o) => o.name.clone(),
        };
        let msg = match vigie_wire::decode::<FrontIn>(&payload) {
            Ok(m) => m,
            Err(e) => {
                self.refuse(&routing_id, &who, e.to_string());
                return Ok(());
            }
        };
        match (peer, msg) {
            (Peer::Agent(key), FrontIn::Plug(ev)) => self.agent_event(key, routing_id, ev),
            (
                Peer::Operator(op),
                FrontIn::Call {
                    id,
                    call,
                    tenant,
                    watch,
                    idem,
                },
            ) => {
                let asked = OperatorCall {
                    id,
                    call,
                    tenant,
                    watch,
                    idem,
                };
                self.operator_call(&op, routing_id, &who, asked)
            }
            (Peer::Agent(_), _) => {
                self.refuse(
                    &routing_id,
                    &who,
                    "agents may only send heartbeats and reports".into(),
                );
                Ok(())
            }
            (Peer::Operator(_), _) => {
                self.refuse(&routing_id, &who, "operators may only make calls".into());
                Ok(())
            }
        }
    }

    /// Once a ping interval: the knocks batched to the referee, agents
    /// not heard from for 30 s forgotten, expired calls' watches dropped,
    /// and a ping to every agent.
    fn every_ping(&mut self) -> Result<(), MajordomoError> {
        self.send_knocks()?;
        self.agents
            .retain(|_, a| a.last_seen.elapsed() < Duration::from_secs(30));
        for topic in self.calls.expire(CALL_EXPIRY) {
            self.sub.set_unsubscribe(&topic)?;
        }
        let now = Instant::now();
        let due: Vec<Vec<u8>> = self
            .agents
            .values_mut()
            .filter(|a| now.duration_since(a.pinged) >= AGENT_PING)
            .map(|a| {
                a.pinged = now;
                a.routing_id.clone()
            })
            .collect();
        for id in due {
            self.send(&id, &FrontOut::Ping);
        }
        Ok(())
    }

    /// An operator's call: forwarded to the referee, or answered here.
    fn operator_call(
        &mut self,
        op: &OperatorRecord,
        routing_id: Vec<u8>,
        who: &str,
        asked: OperatorCall,
    ) -> Result<(), MajordomoError> {
        let id = asked.id;
        let (effect, subscribe) = self.calls.call(op, routing_id.clone(), asked);
        for topic in subscribe {
            self.sub.set_subscribe(&topic)?;
        }
        match effect {
            Effect::Forward(req) => {
                if let Err(e) = self.api.send(vigie_wire::encode(&req)?, zmq::DONTWAIT) {
                    tracing::warn!(event = "call_deferred", operator = %who, error = %e);
                    let fault = vigie_wire::tower::ApiFault::new(
                        vigie_wire::tower::ApiFaultKind::Storage,
                        "the referee is not reachable: try again",
                    );
                    let reply = ApiReply {
                        id,
                        body: Err(fault),
                    };
                    self.send(&routing_id, &FrontOut::Reply(reply));
                }
            }
            Effect::Answer(reply) => self.send(&routing_id, &FrontOut::Reply(reply)),
        }
        Ok(())
    }

    /// An agent's heartbeat or report, for its own host only.
    fn agent_event(
        &mut self,
        key: KeyRecord,
        routing_id: Vec<u8>,
        ev: PlugEvent,
    ) -> Result<(), MajordomoError> {
        // Heartbeats, reports, host metrics and logs alike: only for the
        // host the key was registered as.
        let host = ev.host();
        if host != key.host {
            let reason = format!("this key speaks for {}, not {host}", key.host);
            self.refuse(&routing_id, &key.host, reason);
            return Ok(());
        }
        let now = Instant::now();
        let agent = match self.agents.entry(key.host.clone()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                self.sub.set_subscribe(&host_topic(&key.host))?;
                tracing::info!(event = "agent_connected", host = %key.host, public = %key.public);
                v.insert(Agent {
                    routing_id: routing_id.clone(),
                    last_seen: now,
                    pinged: now,
                    beat: None,
                })
            }
        };
        agent.routing_id = routing_id;
        agent.last_seen = now;
        let frame = vigie_wire::encode(&ev)?;
        if matches!(ev, PlugEvent::Heartbeat { .. }) {
            if !relay_beat(agent.beat.as_ref(), &frame, now) {
                return Ok(());
            }
            agent.beat = Some((frame.clone(), now));
        }
        if let Err(e) = self.push.send(frame, zmq::DONTWAIT) {
            tracing::warn!(event = "relay_deferred", host = %key.host, error = %e);
        }
        Ok(())
    }

    /// One answer from the referee's API, relayed to the operator who asked.
    fn answer(&mut self) -> Result<(), MajordomoError> {
        let frame = self.api.recv_bytes(zmq::DONTWAIT)?;
        let reply = match vigie_wire::decode::<ApiReply>(&frame) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(event = "answer_rejected", reason = %e);
                return Ok(());
            }
        };
        // Answers to the door's own knocks are only acknowledgements.
        let Some(a) = self.calls.answer(reply) else {
            return Ok(());
        };
        if let Some(r) = &a.refresh {
            self.registry.refresh(&self.db, r)?;
            self.prune_watches()?;
        }
        self.send(&a.peer, &FrontOut::Reply(a.reply));
        for v in a.held {
            self.send(&a.peer, &FrontOut::Update(v));
        }
        for topic in a.unsubscribe {
            self.sub.set_unsubscribe(&topic)?;
        }
        Ok(())
    }

    /// One message from the referee's PUB.
    fn outbound(&mut self) -> Result<(), MajordomoError> {
        let parts = self.sub.recv_multipart(zmq::DONTWAIT)?;
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
                        self.sub.set_unsubscribe(&host_topic(&host))?;
                        tracing::warn!(event = "agent_cut", host = %host, reason = "revoked");
                    }
                }
            }
            Published::Order(ref o) => self.to_agent(&o.host.clone(), msg),
            Published::ReportAck { ref host, .. } | Published::Incarnation { ref host, .. } => {
                self.to_agent(&host.clone(), msg)
            }
            Published::LogsRequest(ref r) => self.to_agent(&r.query.host.clone(), msg),
            Published::Operator(rec) => {
                self.registry.put_operator(rec);
                self.prune_watches()?;
            }
            Published::Update(v) => {
                let (peers, unsubscribe) = self.calls.update(&v);
                let out = FrontOut::Update(v);
                for p in peers {
                    self.send(&p, &out);
                }
                if let Some(topic) = unsubscribe {
                    self.sub.set_unsubscribe(&topic)?;
                }
            }
        }
        Ok(())
    }

    fn to_agent(&self, host: &str, msg: Published) {
        if let Some(a) = self.agents.get(host) {
            self.send(&a.routing_id, &FrontOut::Published(msg));
        }
    }
}

/// The window of the limits on refused frames' logs and replies.
const LOG_WINDOW: Duration = Duration::from_secs(10);
/// Unknown keys recorded as pending: per source address and in all, per
/// window (the setup's `limits:`), shared fairly: a source new in the
/// window takes a slot from the most active one, so a flood from many
/// addresses does not keep a genuine new agent out. A legitimate agent
/// dropped anyway knocks again: it gets in at a later window.
const KNOCK_WINDOW: Duration = Duration::from_secs(60);

impl Door {
    /// An unknown key knocked: kept for the next batch if the limits let it.
    fn knock(&mut self, public: String, address: String) {
        // The same key knocking again before its batch left counts once.
        if self.knocked.iter().any(|k| k.public == public) {
            return;
        }
        match self.knocks.admit(address.clone(), Instant::now()) {
            Admit::Pass => {}
            Admit::PassEvicting(victim) => {
                // The victim's latest knock not yet sent gives way: then
                // the slot cost nothing.
                if let Some(i) = self.knocked.iter().rposition(|k| k.address == victim) {
                    self.knocked.remove(i);
                    self.knocks_dropped += 1;
                    self.knocks.refund();
                }
            }
            Admit::Drop => {
                self.knocks_dropped += 1;
                return;
            }
        }
        self.knocked.push(Knock { public, address });
    }

    /// Sends the knocks of the last second to the referee as one call.
    fn send_knocks(&mut self) -> Result<(), MajordomoError> {
        if self.knocked.is_empty() && self.knocks_dropped == 0 {
            return Ok(());
        }
        let req = ApiRequest {
            id: self.calls.own_id(),
            caller: caller(),
            call: ApiCall::KeysPending {
                knocks: std::mem::take(&mut self.knocked),
                dropped: std::mem::take(&mut self.knocks_dropped),
            },
            idem: None,
        };
        self.api.send(vigie_wire::encode(&req)?, zmq::DONTWAIT).ok();
        Ok(())
    }

    /// Closes the limits' windows and says, once, what they held back.
    fn roll_limits(&mut self) {
        let now = Instant::now();
        if let Some(s) = self.rejects.roll(now) {
            tracing::warn!(
                event = "frames_rejected",
                suppressed = s.events,
                peers = s.sources
            );
        }
        if let Some(s) = self.knocks.roll(now) {
            tracing::warn!(
                event = "knocks_dropped",
                suppressed = s.events,
                sources = s.sources
            );
        }
    }
}

/// Handles messages until the socket has none left (EAGAIN).
fn drain(mut handle: impl FnMut() -> Result<(), MajordomoError>) -> Result<(), MajordomoError> {
    loop {
        match handle() {
            Ok(()) => {}
            Err(MajordomoError::Zmq(zmq::Error::EAGAIN | zmq::Error::EINTR)) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Connections waiting to be accepted (`listen(2)`'s backlog).
const ACCEPT_BACKLOG: i32 = 4_096;

/// The majordomo's context. Every frame of every agent is CURVE-encrypted
/// or decrypted in an I/O thread: one a core (libzmq spreads connections
/// over them), not libzmq's single one, which 7,000 agents kept busy
/// (BENCHMARKS.md).
fn context() -> Result<zmq::Context, MajordomoError> {
    let ctx = zmq::Context::new();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    ctx.set_io_threads(i32::try_from(cores.clamp(1, 8)).unwrap_or(1))?;
    Ok(ctx)
}

/// The CURVE ROUTER remote peers connect to (keys checked by ZAP).
fn front_door(
    ctx: &zmq::Context,
    secret: &[u8],
    bind: &str,
) -> Result<zmq::Socket, MajordomoError> {
    let router = ctx.socket(zmq::ROUTER)?;
    router.set_curve_server(true)?;
    router.set_curve_secretkey(secret)?;
    router.set_zap_domain(crate::ZAP_DOMAIN)?;
    router.set_maxmsgsize(vigie_wire::limits::MAX_FRAME as i64)?;
    // No ZMTP heartbeats from the door: libzmq 4.3 keeps an I/O thread's
    // timers in one multimap whose cancel is a linear scan, and a
    // heartbeat cancels one timer per peer and interval — peers² steps a
    // second (the majordomo's top symbol at 3,000 agents, its wall at
    // 10,000; BENCHMARKS.md). The kernel's keepalive finds a dead peer
    // instead, agents still ping the door (answered without a timer), and
    // an agent silent for 30 s is forgotten.
    router.set_tcp_keepalive(1)?;
    router.set_tcp_keepalive_idle(10)?;
    router.set_tcp_keepalive_intvl(2)?;
    router.set_tcp_keepalive_cnt(3)?;
    router.set_sndhwm(100_000)?;
    router.set_linger(0)?;
    // libzmq listens with a backlog of 100: a fleet reconnecting at once
    // (a tower restart) overflows it, and every dropped SYN waits for
    // the kernel's retransmission (1 s, 3 s, 7 s...). The kernel caps it
    // at net.core.somaxconn.
    router.set_backlog(ACCEPT_BACKLOG)?;
    router.bind(bind)?;
    Ok(router)
}

/// The referee's sockets: its PUB (key changes), its PULL (agents'
/// events relayed) and its API (operators' calls relayed).
fn referee_sockets(
    ctx: &zmq::Context,
    cfg: &MajordomoConfig,
) -> Result<(zmq::Socket, zmq::Socket, zmq::Socket), MajordomoError> {
    let sub = ctx.socket(zmq::SUB)?;
    // One subscription per connected agent (its host's topic), all sent
    // again whenever the link to the referee is made anew: libzmq drops a
    // subscription silently once ZMQ_SNDHWM (1,000 by default) are
    // waiting, and an agent whose topic was dropped never hears its
    // incarnation — 495 of 3,000 stayed offline so (BENCHMARKS.md). No
    // limit: their number is bounded by the agents the door holds.
    sub.set_sndhwm(0)?;
    sub.set_subscribe(KEYS_TOPIC)?;
    sub.connect(&cfg.orders)?;
    let push = ctx.socket(zmq::PUSH)?;
    push.set_sndhwm(100_000)?;
    push.connect(&cfg.events)?;
    let api = ctx.socket(zmq::DEALER)?;
    api.set_linger(0)?;
    api.connect(&cfg.api)?;
    Ok((sub, push, api))
}

pub fn serve(cfg: MajordomoConfig, shutdown: Arc<AtomicBool>) -> Result<(), MajordomoError> {
    let keys = crate::keys::read_secret(&cfg.secret_key)?;
    let db = vigie_escalator::Client::connect(&cfg.escalator)?.create("tower")?;
    let registry = Registry::load(&db)?;
    let ctx = context()?;
    // The ZAP handler must be bound before the socket that uses it.
    let rep = crate::zap::bind(&ctx)?;
    let (knock_tx, knocks) = mpsc::channel();
    let zap = {
        let (registry, stop) = (registry.clone(), shutdown.clone());
        std::thread::spawn(move || crate::zap::run(rep, registry, knock_tx, stop))
    };
    let router = front_door(&ctx, &keys.secret, &cfg.bind)?;
    let (sub, push, api) = referee_sockets(&ctx, &cfg)?;
    tracing::info!(event = "majordomo_started", bind = %cfg.bind, public = %keys.public_z85());

    let mut door = Door {
        router,
        sub,
        push,
        api,
        registry: registry.clone(),
        db,
        agents: HashMap::new(),
        calls: Calls::new({
            let registry = registry.clone();
            move |public| registry.operator_active(public)
        }),
        rejects: Throttle::new(LOG_WINDOW, 5, 100, Instant::now()),
        knocks: FairBudget::new(
            KNOCK_WINDOW,
            cfg.knocks_per_source,
            cfg.knocks_per_minute,
            Instant::now(),
        ),
        knocked: Vec::new(),
        knocks_dropped: 0,
    };
    let mut next_ping = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        let mut items = [
            door.router.as_poll_item(zmq::POLLIN),
            door.sub.as_poll_item(zmq::POLLIN),
            door.api.as_poll_item(zmq::POLLIN),
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
            drain(|| door.inbound())?;
        }
        if back {
            drain(|| door.outbound())?;
        }
        if answers {
            drain(|| door.answer())?;
        }
        while let Ok((public, address)) = knocks.try_recv() {
            door.knock(public, address);
        }
        door.roll_limits();
        if Instant::now() >= next_ping {
            next_ping = Instant::now() + PING;
            door.every_ping()?;
        }
    }
    let _ = zap.join();
    tracing::info!(event = "majordomo_stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The mechanism behind agents that never took their incarnation at
    /// 3,000 (BENCHMARKS.md): libzmq drops a SUB's subscription when the
    /// pipe to its publisher holds `ZMQ_SNDHWM` messages, silently, and the
    /// door subscribes once per agent. A fleet connecting (or coming back
    /// after a restart) faster than the subscriptions leave — here, before
    /// the referee is even listening — must still have every agent's topic
    /// subscribed, or the incarnations and orders for the agents past the
    /// limit never reach them.
    #[test]
    fn every_agents_subscription_reaches_the_referee_however_many_at_once(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let orders = format!("ipc://{}/orders.sock", dir.path().display());
        let cfg = MajordomoConfig {
            bind: String::new(),
            escalator: String::new(),
            api: format!("ipc://{}/api.sock", dir.path().display()),
            events: format!("ipc://{}/events.sock", dir.path().display()),
            orders: orders.clone(),
            secret_key: PathBuf::new(),
            knocks_per_minute: 0,
            knocks_per_source: 0,
        };
        let ctx = zmq::Context::new();
        let (sub, _push, _api) = referee_sockets(&ctx, &cfg)?;
        let agents = 5_000;
        for i in 0..agents {
            sub.set_subscribe(&host_topic(&format!("sim-{i}")))?;
        }
        // The referee comes up only now: everything above is queued.
        let xpub = ctx.socket(zmq::XPUB)?;
        xpub.set_rcvhwm(0)?;
        xpub.bind(&orders)?;
        let mut seen = std::collections::HashSet::new();
        while seen.len() < agents {
            // Waits on the subscriptions themselves; 5 s without one
            // means the rest were dropped.
            assert!(
                xpub.poll(zmq::POLLIN, 5_000)? > 0,
                "{} of {agents} agents' subscriptions reached the referee",
                seen.len()
            );
            let m = xpub.recv_bytes(0)?;
            if m.first() == Some(&1) && m[1..] != *KEYS_TOPIC {
                seen.insert(m[1..].to_vec());
            }
        }
        Ok(())
    }

    #[test]
    fn a_beat_that_says_nothing_new_is_relayed_once_a_second() {
        let t = Instant::now();
        assert!(relay_beat(None, b"beat", t), "the first beat goes");
        let last = (b"beat".to_vec(), t);
        let soon = t + Duration::from_millis(500);
        assert!(
            !relay_beat(Some(&last), b"beat", soon),
            "the same beat, 0.5 s later"
        );
        assert!(
            relay_beat(Some(&last), b"busy", soon),
            "a beat that changed goes at once"
        );
        assert!(
            relay_beat(Some(&last), b"beat", t + BEAT_RELAY),
            "the same beat a second later goes: the referee judges by it"
        );
    }
}
