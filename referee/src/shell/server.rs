//! The referee's sockets and loop. One thread; each turn drains what the
//! sockets hold, applies it, stores the turn's writes in one durable
//! Escalator batch, and only then publishes orders, acknowledgements,
//! updates and replies. A failed commit stops the referee (its state is
//! rebuilt from Escalator on restart): nothing unstored is ever announced.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_escalator::Client;
use vigie_wire::tower::{
    ApiCall, ApiFault, ApiFaultKind, ApiReply, ApiRequest, PlugEvent, Published,
};

use crate::core::model::DB;
use crate::core::state::{Core, Input, Timing};
use crate::core::turn::Turn;
use crate::error::RefereeError;
use crate::shell::clock::now_ms;
use crate::shell::store::Store;

#[derive(Debug, Clone)]
pub struct RefereeConfig {
    pub escalator: String,
    /// ROUTER for operators' calls.
    pub api: String,
    /// PULL for plugs' heartbeats and reports.
    pub events: String,
    /// PUB for orders, acknowledgements and change updates.
    pub orders: String,
    pub host_timeout: Duration,
    pub resend_after: Duration,
    /// The public key (Z85) of the admin operator made at the first start,
    /// when no operator exists yet.
    pub admin_key: Option<String>,
    /// The setup file's hosts and their labels (see `setup_hosts`).
    pub setup_hosts: Vec<(vigie_wire::tower::HostId, vigie_wire::tower::Labels)>,
    /// The setup's label rules, applied to every host when it registers.
    pub label_rules: Vec<crate::core::labels::LabelRule>,
    /// The shares of the tower's bounded resources (the setup's `limits:`).
    pub limits: vigie_wire::limits::Shares,
    /// Where tenants' SSH keys for provisioning are (`DATA/provisioner`,
    /// see `ssh_keys`); `None`: the tower gives none.
    pub ssh_keys: Option<std::path::PathBuf>,
    /// The launcher's lifecycle PUB, for its daemons' states (`health.rs`).
    pub lifecycle: Option<String>,
    /// The tower's key for secrets at rest, made here when absent.
    pub secrets_key: Option<std::path::PathBuf>,
    /// Setup hosts' public sealing keys (Z85 files): their plugs open
    /// the secrets sealed for them.
    pub seal_keys: Vec<(String, std::path::PathBuf)>,
}

impl RefereeConfig {
    pub fn new(escalator: &str, api: &str, events: &str, orders: &str) -> Self {
        Self {
            escalator: escalator.to_owned(),
            api: api.to_owned(),
            events: events.to_owned(),
            orders: orders.to_owned(),
            host_timeout: Duration::from_secs(3),
            resend_after: Duration::from_secs(1),
            admin_key: None,
            setup_hosts: Vec::new(),
            label_rules: Vec::new(),
            limits: Default::default(),
            ssh_keys: None,
            lifecycle: None,
            secrets_key: None,
            seal_keys: Vec::new(),
        }
    }
}

/// Most messages taken from one socket in a turn: bounds a turn's batch.
const DRAIN_CAP: usize = 5_000;
/// How long a starting referee waits for the launcher's health snapshot.
const HEALTH_WAIT: Duration = Duration::from_secs(2);
/// How often liveness and resends are looked at.
const TICK: Duration = Duration::from_millis(100);

struct Sockets {
    api: zmq::Socket,
    events: zmq::Socket,
    orders: zmq::Socket,
    /// `audit verify`, answered off the loop.
    verifier: crate::shell::audit_verify::Verifier,
}

fn bind(ctx: &zmq::Context, kind: zmq::SocketType, ep: &str) -> Result<zmq::Socket, RefereeError> {
    let s = ctx.socket(kind)?;
    s.set_maxmsgsize(vigie_wire::limits::MAX_FRAME as i64)?;
    s.set_sndhwm(1_000_000)?;
    s.set_rcvhwm(1_000_000)?;
    s.set_linger(1_000)?;
    s.bind(ep)
        .inspect_err(|e| tracing::error!(event = "bind_failed", endpoint = ep, error = %e))?;
    Ok(s)
}

pub fn serve(cfg: RefereeConfig, shutdown: Arc<AtomicBool>) -> Result<(), RefereeError> {
    let client = Client::connect(&cfg.escalator)?;
    let db = client.create(DB)?;
    let timing = Timing {
        host_timeout: cfg.host_timeout,
        resend_after: cfg.resend_after,
    };
    let mut tower = crate::shell::load::tower(&db, timing)?;
    tower.with_setup(cfg.label_rules.clone(), cfg.limits.clone());
    tower.catalog_mut().set_ssh_keys(cfg.ssh_keys.clone());
    crate::shell::vault_files::configure(
        tower.secrets_mut(),
        cfg.secrets_key.as_deref(),
        &cfg.seal_keys,
    )?;
    let ctx = zmq::Context::new();
    let s = Sockets {
        api: bind(&ctx, zmq::ROUTER, &cfg.api)?,
        events: bind(&ctx, zmq::PULL, &cfg.events)?,
        orders: bind(&ctx, zmq::PUB, &cfg.orders)?,
        verifier: crate::shell::audit_verify::Verifier::start(&ctx, &cfg.escalator)?,
    };
    let health = match &cfg.lifecycle {
        Some(ep) => {
            let sock = crate::shell::health_feed::subscribe(&ctx, ep)?;
            crate::shell::health_feed::first_snapshot(&sock, &mut tower, HEALTH_WAIT)?;
            Some(sock)
        }
        None => None,
    };
    first_turn(&cfg, &mut tower, &db, &s)?;
    let mut last_tick = Instant::now();
    while !shutdown.load(Ordering::Relaxed) {
        let mut items = vec![
            s.api.as_poll_item(zmq::POLLIN),
            s.events.as_poll_item(zmq::POLLIN),
            s.verifier.replies.as_poll_item(zmq::POLLIN),
        ];
        items.extend(health.as_ref().map(|h| h.as_poll_item(zmq::POLLIN)));
        match zmq::poll(&mut items, 100) {
            Ok(_) | Err(zmq::Error::EINTR) => {}
            Err(e) => return Err(e.into()),
        }
        // Before the calls: a call sees the latest states.
        if let Some(sock) = &health {
            crate::shell::health_feed::drain(sock, &mut tower)?;
        }
        one_turn(&s, &mut tower, &db, &mut last_tick)?;
        while let Ok(reply) = s.verifier.replies.recv_multipart(zmq::DONTWAIT) {
            s.api.send_multipart(reply, 0)?;
        }
    }
    tracing::info!(event = "referee_stopped");
    Ok(())
}

/// The start's own turn, stored before `referee_started`: the admin made
/// at the first start, the setup's hosts.
fn first_turn(
    cfg: &RefereeConfig,
    tower: &mut Core,
    db: &dyn Store,
    s: &Sockets,
) -> Result<(), RefereeError> {
    // Before `referee_started`: the majordomo, started after it, must
    // find the admin in the registry it loads, and plugs their labels.
    let mut turn = Turn::at(now_ms());
    let made = match &cfg.admin_key {
        Some(public) => crate::core::handlers::operators::bootstrap_admin(tower, public, &mut turn)
            .map_err(RefereeError::Admin)?,
        None => false,
    };
    crate::core::handlers::setup_hosts::apply_setup_hosts(tower, &cfg.setup_hosts, &mut turn);
    tower.finish_turn(&mut turn);
    commit(db, &mut turn)?;
    release(s, turn)?;
    if made {
        tracing::info!(
            event = "admin_created",
            operator = crate::core::operators::ADMIN
        );
    }
    tracing::info!(
        event = "referee_started",
        api = cfg.api,
        events = cfg.events,
        orders = cfg.orders,
        hosts = tower.hosts().len(),
        pending = tower.queues().pending(),
        next_seq = tower.queues().next_seq(),
    );
    Ok(())
}

/// One turn of the loop: the calls and events waiting, the tick when due,
/// the turn's writes stored, then what it produced sent.
fn one_turn(
    s: &Sockets,
    tower: &mut Core,
    db: &dyn Store,
    last_tick: &mut Instant,
) -> Result<(), RefereeError> {
    let now = Instant::now();
    let mut turn = Turn::at(now_ms());
    let calls = drain_api(s, tower, db, now, &mut turn)?;
    let events = drain_events(&s.events, tower, now, &mut turn)?;
    if now.duration_since(*last_tick) >= TICK {
        turn.now_ms = now_ms();
        // Events left unread may hold the beats a host is judged by.
        let judge = events < DRAIN_CAP && !turn.full();
        crate::core::handlers::input::handle(tower, Input::Tick { judge }, now, &mut turn);
        *last_tick = now;
    }
    tower.finish_turn(&mut turn);
    let (writes, publish) = (turn.writes.len(), turn.publish.len());
    let applied = now.elapsed();
    commit(db, &mut turn)?;
    let committed = now.elapsed();
    release(s, turn)?;
    if calls + events > 0 {
        tracing::debug!(
            event = "turn",
            calls,
            events,
            writes,
            publish,
            apply_us = applied.as_micros() as u64,
            commit_us = (committed - applied).as_micros() as u64,
            release_us = (now.elapsed() - committed).as_micros() as u64,
        );
    }
    Ok(())
}

/// Takes what a socket holds, without blocking, while the turn has room.
/// Returns how many messages it handled.
fn drain(
    sock: &zmq::Socket,
    turn: &mut Turn,
    mut handle: impl FnMut(Vec<Vec<u8>>, &mut Turn),
) -> Result<usize, RefereeError> {
    let mut n = 0;
    while n < DRAIN_CAP && !turn.full() {
        match sock.recv_multipart(zmq::DONTWAIT) {
            Ok(parts) => {
                // Each input is stamped with the time it is decided at.
                turn.now_ms = now_ms();
                handle(parts, turn)
            }
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => break,
            Err(e) => return Err(e.into()),
        }
        n += 1;
    }
    Ok(n)
}

fn drain_api(
    s: &Sockets,
    tower: &mut Core,
    db: &dyn Store,
    now: Instant,
    turn: &mut Turn,
) -> Result<usize, RefereeError> {
    drain(&s.api, turn, |parts, turn| {
        let [ident, frame] = <[Vec<u8>; 2]>::try_from(parts).unwrap_or_default();
        if ident.is_empty() {
            return;
        }
        match vigie_wire::decode::<ApiRequest>(&frame) {
            Ok(ApiRequest {
                id,
                caller,
                call: ApiCall::Logs(query),
                idem,
            }) => {
                // The caller it goes on as: its application scope read
                // of the tenant's deployments (`history::logs_caller`).
                match crate::shell::history::logs_caller(tower, db, caller, &query, turn) {
                    Ok(caller) => {
                        let req = ApiRequest {
                            id,
                            caller,
                            call: ApiCall::Logs(query),
                            idem,
                        };
                        let fetched = Default::default();
                        let input = Input::Call {
                            to: ident,
                            req,
                            fetched: &fetched,
                        };
                        crate::core::handlers::input::handle(tower, input, now, turn);
                    }
                    Err(fault) => {
                        let body = Err(fault);
                        turn.replies.push((ident, ApiReply { id, body }));
                    }
                }
            }
            Ok(ApiRequest {
                id,
                caller,
                call: ApiCall::AuditVerify,
                ..
            }) if s.verifier.ask(ident.clone(), id, &caller) => {}
            Ok(req) => {
                let fetched = crate::shell::history::fetch(
                    tower,
                    db,
                    &req.caller,
                    &req.call,
                    req.idem.as_ref(),
                );
                let input = Input::Call {
                    to: ident,
                    req,
                    fetched: &fetched,
                };
                crate::core::handlers::input::handle(tower, input, now, turn);
            }
            Err(e) => {
                let body = Err(ApiFault::new(ApiFaultKind::Malformed, e.to_string()));
                turn.replies.push((ident, ApiReply { id: 0, body }));
            }
        }
    })
}

fn drain_events(
    sock: &zmq::Socket,
    tower: &mut Core,
    now: Instant,
    turn: &mut Turn,
) -> Result<usize, RefereeError> {
    drain(sock, turn, |parts, turn| {
        let Some(frame) = parts.first() else { return };
        match vigie_wire::decode::<PlugEvent>(frame) {
            Ok(ev) => crate::core::handlers::input::handle(tower, Input::Plug(ev), now, turn),
            Err(e) => tracing::warn!(event = "event_rejected", reason = %e),
        }
    })
}

/// Stores the turn's writes in one durable batch: a turn is stored whole
/// or not at all (its size is bounded by `Turn::full`).
pub(crate) fn commit(db: &dyn Store, turn: &mut Turn) -> Result<(), RefereeError> {
    if turn.writes.is_empty() {
        return Ok(());
    }
    db.write(&mut turn.writes)?;
    Ok(())
}

/// Sends what the turn produced, now that it is stored.
fn release(s: &Sockets, turn: Turn) -> Result<(), RefereeError> {
    for (topics, msg) in turn.publish {
        match vigie_wire::encode::<Published>(&msg) {
            Ok(frame) => {
                for topic in topics {
                    s.orders.send_multipart([topic.as_slice(), &frame], 0)?;
                }
            }
            Err(e) => tracing::error!(event = "publish_failed", error = %e),
        }
    }
    for (ident, reply) in turn.replies {
        let frame = vigie_wire::encode(&reply).or_else(|e| {
            // Too big for a frame: say so rather than stop the referee.
            let fault = ApiFault::new(
                ApiFaultKind::Invalid,
                format!("the answer is too large ({e}): ask for less"),
            );
            vigie_wire::encode(&ApiReply {
                id: reply.id,
                body: Err(fault),
            })
        })?;
        s.api.send_multipart([ident, frame], 0)?;
    }
    for log in turn.logs {
        log.emit();
    }
    Ok(())
}
