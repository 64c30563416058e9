//! Operators' calls at the door: each is checked against the operator's
//! grants here, sent on to the referee as that operator (tenant, name,
//! host scope for the call's verb), and its answer relayed back. Watched
//! changes' updates go only to peers the referee let read them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use vigie_wire::front::{OperatorRecord, Verb};
use vigie_wire::tower::{
    change_topic, ApiAnswer, ApiCall, ApiFault, ApiFaultKind, ApiReply, ApiRequest, Caller,
    ChangeId, ChangeView, IdemKey, Origin, Scope,
};

/// A call sent on to the referee, waiting for its answer.
struct InFlight {
    peer: Vec<u8>,
    /// The operator's key the call came with.
    public: String,
    /// The operator's own request id.
    id: u64,
    /// The change whose updates the peer asked for.
    watch: Option<ChangeId>,
    /// What of the door's registry the call changes, if anything.
    registry: Option<crate::registry::Refresh>,
    sent: Instant,
    /// The call's verb, for the `call_answered` event (metrics).
    verb: &'static str,
}

#[derive(Default)]
struct Watch {
    /// Peers the referee let read this change, with the operator's key
    /// each came with (a revoked or rotated key loses its watches).
    peers: HashMap<Vec<u8>, String>,
    /// Watch requests not answered yet, and the updates held meanwhile.
    asking: usize,
    held: Vec<ChangeView>,
}

/// Whether an operator's key may still talk (the registry's answer).
type ActiveCheck = Box<dyn Fn(&str) -> bool>;

/// An operator's call as it came through the door (`FrontIn::Call`).
#[derive(Debug)]
pub struct OperatorCall {
    /// The operator's own id for the call, echoed in the reply.
    pub id: u64,
    pub call: ApiCall,
    /// The tenant the operator acts in, when it may choose.
    pub tenant: Option<String>,
    /// Also deliver the change's updates (`Status` of one change).
    pub watch: bool,
    pub idem: Option<IdemKey>,
}

#[derive(Default)]
pub struct Calls {
    next_id: u64,
    in_flight: HashMap<u64, InFlight>,
    watches: HashMap<ChangeId, Watch>,
    active: Option<ActiveCheck>,
}

/// One stable word per fault kind, for events and metrics labels.
fn fault_word(kind: ApiFaultKind) -> &'static str {
    match kind {
        ApiFaultKind::Malformed => "malformed",
        ApiFaultKind::Invalid => "invalid",
        ApiFaultKind::NotFound => "not_found",
        ApiFaultKind::Conflict => "conflict",
        ApiFaultKind::Tampered => "tampered",
        ApiFaultKind::Forbidden => "forbidden",
        ApiFaultKind::Storage => "storage",
        ApiFaultKind::Unavailable => "unavailable",
    }
}

/// The referee's answer to one operator's call, ready to relay.
pub struct Answer {
    pub peer: Vec<u8>,
    /// With the operator's own request id.
    pub reply: ApiReply,
    /// Updates of the watched change held while the referee answered.
    pub held: Vec<ChangeView>,
    /// A change topic nobody watches any more.
    pub unsubscribe: Option<Vec<u8>>,
    /// The call changed these records of the key registry or the
    /// operators: read them again before relaying the answer.
    pub refresh: Option<crate::registry::Refresh>,
}

/// What the door must do after a step of a call.
pub enum Effect {
    /// Send this request to the referee's API.
    Forward(ApiRequest),
    /// Answer the peer at once.
    Answer(ApiReply),
}

fn forbidden(id: u64, msg: String) -> Effect {
    Effect::Answer(ApiReply {
        id,
        body: Err(ApiFault::new(ApiFaultKind::Forbidden, msg)),
    })
}

/// The caller a call of `op` goes on as, or why it may not go on.
pub fn authorize(
    op: &OperatorRecord,
    call: &ApiCall,
    tenant: Option<&str>,
) -> Result<Caller, String> {
    let who = &op.name;
    // An operator's own logins and tokens: she acts as herself, in her own
    // tenant, over no host (the referee ties them to her record).
    if let ApiCall::Web(w) = call {
        if w.own() && tenant.is_none_or(|t| t == op.tenant) {
            return Ok(Caller {
                tenant: op.tenant.clone(),
                operator: op.name.clone(),
                scope: Scope::Only(Vec::new()),
                origin: Origin::Operator {
                    home: op.tenant.clone(),
                },
            });
        }
    }
    let Some(verb) = call.verb() else {
        return Err("operators cannot make this call".into());
    };
    let tenants_admin = !op.scopes(Verb::TenantsAdmin).is_empty();
    let tenant = tenant.unwrap_or(&op.tenant);
    if tenant != op.tenant && !tenants_admin {
        return Err(format!(
            "operator {who} may not act in tenant {tenant} (needs tenants.admin)"
        ));
    }
    let handed = match call {
        ApiCall::OperatorAdd { grants, .. } => grants.as_slice(),
        ApiCall::OperatorGrant { grant, .. } => std::slice::from_ref(grant),
        _ => &[],
    };
    if handed.iter().any(|g| g.verb == Verb::TenantsAdmin) && !tenants_admin {
        return Err(format!(
            "operator {who} may not grant tenants.admin without holding it"
        ));
    }
    let mut scopes = op.scopes(verb);
    let also = call.also();
    scopes.extend(also.map(|v| op.scopes(v)).unwrap_or_default());
    if scopes.is_empty() {
        let or = also
            .map(|v| format!(" (or {})", v.word()))
            .unwrap_or_default();
        return Err(format!(
            "operator {who} lacks the {} permission{or}",
            verb.word()
        ));
    }
    let scope = if scopes.iter().any(|s| s == "*") {
        Scope::All
    } else {
        Scope::Only(scopes)
    };
    Ok(Caller {
        tenant: tenant.to_owned(),
        operator: op.name.clone(),
        scope,
        origin: Origin::Operator {
            home: op.tenant.clone(),
        },
    })
}

impl Calls {
    /// Calls whose watchers are checked against `active` (the registry).
    pub fn new(active: impl Fn(&str) -> bool + 'static) -> Self {
        Self {
            active: Some(Box::new(active)),
            ..Self::default()
        }
    }

    /// Ends every watch of a key that may no longer talk (revoked or
    /// rotated): returns the peers cut and the topics nobody watches now.
    pub fn prune(&mut self) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let Some(active) = &self.active else {
            return (Vec::new(), Vec::new());
        };
        let mut cut = Vec::new();
        let mut topics = Vec::new();
        self.watches.retain(|c, w| {
            w.peers.retain(|peer, public| {
                let keep = active(public);
                if !keep {
                    cut.push(peer.clone());
                }
                keep
            });
            let keep = !w.peers.is_empty() || w.asking > 0;
            if !keep {
                topics.push(change_topic(c));
            }
            keep
        });
        cut.sort();
        cut.dedup();
        (cut, topics)
    }

    /// An id for the door's own requests (knocks): never a relayed call's.
    pub fn own_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A call from `peer`, operator `op`. Returns what to do, and the change
    /// topic to subscribe to (a watch that starts).
    pub fn call(
        &mut self,
        op: &OperatorRecord,
        peer: Vec<u8>,
        asked: OperatorCall,
    ) -> (Effect, Option<Vec<u8>>) {
        let OperatorCall {
            id,
            call,
            tenant,
            watch,
            idem,
        } = asked;
        let caller = match authorize(op, &call, tenant.as_deref()) {
            Ok(c) => c,
            Err(msg) => {
                let verb = call.verb().map_or("none", Verb::word);
                tracing::warn!(event = "call_forbidden", operator = %op.name, verb, reason = %msg);
                return (forbidden(id, msg), None);
            }
        };
        let watch = match (&call, watch) {
            (
                ApiCall::Status {
                    change: Some(c), ..
                },
                true,
            ) => Some(c.clone()),
            _ => None,
        };
        let mut subscribe = None;
        if let Some(c) = &watch {
            let w = self.watches.entry(c.clone()).or_insert_with(|| {
                subscribe = Some(change_topic(c));
                Watch::default()
            });
            w.asking += 1;
        }
        let registry = crate::registry::Refresh::of(&caller.tenant, &call);
        let verb = call.verb().map_or("none", Verb::word);
        self.next_id += 1;
        self.in_flight.insert(
            self.next_id,
            InFlight {
                peer,
                public: op.public.clone(),
                id,
                watch,
                registry,
                sent: Instant::now(),
                verb,
            },
        );
        let req = ApiRequest {
            id: self.next_id,
            caller,
            call,
            idem,
        };
        (Effect::Forward(req), subscribe)
    }

    /// The referee's answer, to relay; `None` for answers to the door's
    /// own requests.
    pub fn answer(&mut self, reply: ApiReply) -> Option<Answer> {
        let f = self.in_flight.remove(&reply.id)?;
        let outcome = match &reply.body {
            Ok(_) => "ok",
            Err(fault) => fault_word(fault.kind),
        };
        tracing::info!(event = "call_answered", verb = f.verb, outcome);
        let (held, unsubscribe) = match &f.watch {
            Some(c) => {
                let readable = matches!(&reply.body, Ok(ApiAnswer::Changes(v)) if v.iter().any(|v| &v.id == c));
                self.settle(c, readable.then(|| (f.peer.clone(), f.public.clone())))
            }
            None => (Vec::new(), None),
        };
        let refresh = f.registry.filter(|_| reply.body.is_ok());
        let reply = ApiReply {
            id: f.id,
            body: reply.body,
        };
        Some(Answer {
            peer: f.peer,
            reply,
            held,
            unsubscribe,
            refresh,
        })
    }

    /// A change's update: the peers to send it to, and the topic to drop
    /// once the change is final.
    pub fn update(&mut self, v: &ChangeView) -> (Vec<Vec<u8>>, Option<Vec<u8>>) {
        let Some(w) = self.watches.get_mut(&v.id) else {
            return (Vec::new(), None);
        };
        if w.asking > 0 {
            w.held.push(v.clone());
        }
        let peers = w.peers.keys().cloned().collect();
        if v.state.is_final() && w.asking == 0 {
            self.watches.remove(&v.id);
            return (peers, Some(change_topic(&v.id)));
        }
        (peers, None)
    }

    /// Forgets calls the referee never answered (it restarted): their
    /// operators have timed out long ago.
    pub fn expire(&mut self, after: Duration) -> Vec<Vec<u8>> {
        let old: Vec<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.sent.elapsed() > after)
            .map(|(k, _)| *k)
            .collect();
        let mut unsubscribe = Vec::new();
        for k in old {
            let Some(f) = self.in_flight.remove(&k) else {
                continue;
            };
            let Some(c) = f.watch else { continue };
            unsubscribe.extend(self.settle(&c, None).1);
        }
        unsubscribe
    }

    /// A watch request on `c` is over: `reader` is the peer the referee
    /// let read it, if it did. Returns the updates held for that reader,
    /// and the topic to drop when nobody watches or asks any more.
    fn settle(
        &mut self,
        c: &str,
        reader: Option<(Vec<u8>, String)>,
    ) -> (Vec<ChangeView>, Option<Vec<u8>>) {
        let Some(w) = self.watches.get_mut(c) else {
            return (Vec::new(), None);
        };
        w.asking = w.asking.saturating_sub(1);
        let mut held = Vec::new();
        if let Some((peer, public)) = reader {
            // Revoked while the referee answered: no updates for it.
            if self.active.as_ref().is_none_or(|still| still(&public)) {
                w.peers.insert(peer, public);
                held = w.held.clone();
            }
        }
        if w.asking > 0 {
            return (held, None);
        }
        w.held.clear();
        if !w.peers.is_empty() {
            return (held, None);
        }
        self.watches.remove(c);
        (held, Some(change_topic(c)))
    }
}
