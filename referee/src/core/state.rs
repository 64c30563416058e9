//! The referee's core state, [`Core`]: hosts, their queues (`queues.rs`),
//! the audit chain's head, and each concern's state; [`Input`], what the
//! shell's loop decides through (`handlers/input.rs`).
//! Mutations go through a [`Turn`] that records the writes, orders and
//! events they imply; `finish_turn` turns dirty records into writes and
//! updates.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{
    host_topic, ApiRequest, AuditRecord, ChangeState, ChangeView, HostId, Order, PlugEvent,
    Published,
};

use crate::core::access::Access;
use crate::core::audit::{self, AuditAction, AuditChain};
use crate::core::codec::{corrupt, encode};
use crate::core::fetched::Fetched;
use crate::core::health::Health;
pub use crate::core::hosts::HostState;
use crate::core::hosts::{resend_delay, Hosts};
use crate::core::model::{change_key, done_key, spec_key, ChangeRecord, HostRecord};
use crate::core::queues::Queues;
use crate::core::turn::{Log, Turn};
use crate::error::RefereeError;

pub use crate::core::queues::RECENT;

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A host without a heartbeat for this long is offline.
    pub host_timeout: Duration,
    /// An order not acknowledged after this long is sent again.
    pub resend_after: Duration,
}

/// What the shell hands the core, one at a time: a call (its history
/// read already into `fetched`, its answer going to the ROUTER identity
/// `to`), a plug's event, or the periodic tick (`judge`: whether hosts
/// may be judged silent, false when plugs' events were left unread).
pub enum Input<'a> {
    Call {
        to: Vec<u8>,
        req: ApiRequest,
        fetched: &'a Fetched,
    },
    Plug(PlugEvent),
    Tick {
        judge: bool,
    },
}

pub struct Core {
    /// Every known host and its liveness (`hosts.rs`).
    hosts: Hosts,
    /// The changes not final in their hosts' queues, their programs,
    /// the next sequence, the recent final changes (`queues.rs`).
    queues: Queues,
    audit: AuditChain,
    timing: Timing,
    /// Idempotency keys of recent calls and their answers.
    idem: crate::core::idem::Remembered,
    /// The agents' key registry and the operators (`access.rs`).
    access: Access,
    /// Servers, sessions, pools, applications (`catalog.rs`).
    catalog: crate::core::catalog::Catalog,
    /// The setup's label rules, applied to every host when it registers.
    rules: Vec<crate::core::labels::LabelRule>,
    /// Each tenant's last audit number (`AuditRecord::tenant_seq`).
    tenant_seqs: HashMap<String, u64>,
    /// Host metrics and waiting logs requests: memory only (`observe.rs`).
    observed: crate::core::observed::Observed,
    /// The shares of bounded resources (the setup's `limits:`).
    limits: vigie_wire::limits::Shares,
    /// The launcher's latest word on every daemon (`health.rs`); `None`
    /// until it comes, or without a launcher.
    health: Health,
    /// Deploy secrets, encrypted (`vault.rs`).
    secrets: crate::core::vault::Vault,
}

/// What a start read of the store, decoded (`shell/load.rs`): the core
/// is built from it and never reads the store itself.
pub struct Loaded {
    pub operators: Vec<vigie_wire::front::OperatorRecord>,
    /// The key registry, by public key.
    pub keys: HashMap<String, vigie_wire::front::KeyRecord>,
    pub hosts: Vec<HostRecord>,
    /// The changes not final, each with its `queue/` entry's key.
    pub queued: Vec<(Vec<u8>, ChangeRecord)>,
    /// Their programs by spec id, with their encoded size.
    pub programs: HashMap<String, (Arc<ChangeSpec>, usize)>,
    /// The most recent final changes, oldest first.
    pub recent: Vec<ChangeView>,
    pub tenant_seqs: HashMap<String, u64>,
    pub next_seq: u64,
    pub audit: AuditChain,
    pub idem: HashMap<Vec<u8>, crate::core::idem::IdemRecord>,
    pub catalog: crate::core::catalog::CatalogRecords,
    /// Deploy secrets' records (ciphertext), by key.
    pub secrets: HashMap<Vec<u8>, crate::core::vault::StoredSecret>,
}

/// Most bytes of orders one turn publishes: a large program to thousands
/// of hosts goes out over several turns (the rest stays queued and is
/// dispatched by the next ticks) instead of holding thousands of copies
/// of it in memory at once.
pub const TURN_MAX_ORDER_BYTES: usize = 64 << 20;

impl Core {
    /// The host timeout and resend delay it was started with (tests).
    #[cfg(test)]
    pub fn timing(&self) -> Timing {
        self.timing
    }

    /// Every known host (`hosts.rs`).
    pub fn hosts(&self) -> &Hosts {
        &self.hosts
    }

    pub fn hosts_mut(&mut self) -> &mut Hosts {
        &mut self.hosts
    }

    /// The hosts' queues and the changes in them (`queues.rs`).
    pub fn queues(&self) -> &Queues {
        &self.queues
    }

    pub fn queues_mut(&mut self) -> &mut Queues {
        &mut self.queues
    }

    /// Host metrics and waiting logs requests (`observed.rs`).
    pub fn observed(&self) -> &crate::core::observed::Observed {
        &self.observed
    }

    pub fn observed_mut(&mut self) -> &mut crate::core::observed::Observed {
        &mut self.observed
    }

    /// The setup's label rules and shares, given at start.
    pub fn with_setup(
        &mut self,
        rules: Vec<crate::core::labels::LabelRule>,
        limits: vigie_wire::limits::Shares,
    ) {
        self.rules = rules;
        self.limits = limits;
    }

    /// Servers, sessions, pools, applications (`catalog.rs`).
    pub fn catalog(&self) -> &crate::core::catalog::Catalog {
        &self.catalog
    }

    pub fn catalog_mut(&mut self) -> &mut crate::core::catalog::Catalog {
        &mut self.catalog
    }

    /// The setup's label rules, applied to every host when it registers.
    pub fn rules(&self) -> &[crate::core::labels::LabelRule] {
        &self.rules
    }

    /// The shares of bounded resources (the setup's `limits:`).
    pub fn limits(&self) -> &vigie_wire::limits::Shares {
        &self.limits
    }

    /// The audit chain's head.
    pub fn audit_head(&self) -> &AuditChain {
        &self.audit
    }

    /// The idempotency keys remembered (`idem.rs`).
    pub fn idem(&self) -> &crate::core::idem::Remembered {
        &self.idem
    }

    /// Remembers a call's first answer under its idempotency key.
    pub fn remember(&mut self, turn: &mut Turn, at: Vec<u8>, rec: crate::core::idem::IdemRecord) {
        self.idem.remember(turn, at, rec);
    }

    /// The agents' keys and the operators (`access.rs`).
    pub fn access(&self) -> &Access {
        &self.access
    }

    pub fn access_mut(&mut self) -> &mut Access {
        &mut self.access
    }

    /// Deploy secrets, encrypted (`vault.rs`).
    pub fn secrets(&self) -> &crate::core::vault::Vault {
        &self.secrets
    }

    pub fn secrets_mut(&mut self) -> &mut crate::core::vault::Vault {
        &mut self.secrets
    }

    /// The launcher's latest word on the tower's daemons (`health.rs`).
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Takes a lifecycle event from the launcher (`health_feed.rs`).
    pub fn lifecycle_event(&mut self, ev: &vigie_wire::lifecycle::LifecycleEvent) {
        self.health.lifecycle_event(ev);
    }

    /// The state a start rebuilds from what it read (`shell/load.rs`).
    pub fn from_loaded(l: Loaded, timing: Timing) -> Result<Self, RefereeError> {
        let mut t = Core {
            hosts: Hosts::loaded(l.hosts),
            queues: Queues::new(l.next_seq, l.recent),
            audit: l.audit,
            timing,
            idem: crate::core::idem::Remembered::loaded(l.idem),
            access: Access::loaded(l.operators, l.keys),
            catalog: crate::core::catalog::Catalog::from_records(l.catalog),
            rules: Vec::new(),
            tenant_seqs: l.tenant_seqs,
            observed: Default::default(),
            limits: Default::default(),
            health: Health::default(),
            secrets: crate::core::vault::Vault::loaded(l.secrets),
        };
        for (key, rec) in l.queued {
            t.load_queued(&key, rec, &l.programs)?;
        }
        Ok(t)
    }

    /// A queued change (its `queue/` entry `key`), for a known host.
    fn load_queued(
        &mut self,
        key: &[u8],
        rec: ChangeRecord,
        programs: &HashMap<String, (Arc<ChangeSpec>, usize)>,
    ) -> Result<(), RefereeError> {
        if !self.hosts.contains(&rec.view.host) {
            return Err(corrupt(key, "queued for an unknown host"));
        }
        let sk = spec_key(&rec.spec_id);
        self.queues
            .load(rec, programs)
            .map_err(|why| corrupt(&sk, why))
    }

    /// Appends an audit record for `change` to the chain and the turn.
    pub fn audit(
        &mut self,
        turn: &mut Turn,
        change: &ChangeView,
        step: Option<u32>,
        action: AuditAction,
        result: Option<&vigie_wire::change::StepResult>,
    ) {
        let r = result.cloned().unwrap_or_default();
        let tail = if r.stderr_tail.is_empty() {
            r.stdout_tail
        } else {
            format!("{}{}", r.stdout_tail, r.stderr_tail)
        };
        self.append_audit(
            turn,
            AuditRecord {
                seq: 0,
                at_ms: turn.now_ms,
                tenant: change.tenant.clone(),
                operator: change.operator.clone(),
                host: change.host.clone(),
                change: change.id.clone(),
                step,
                action: action.as_str().to_owned(),
                summary: if r.summary.is_empty() {
                    change.title.clone()
                } else {
                    r.summary
                },
                exit_code: r.exit_code,
                before_digest: r.before_digest,
                after_digest: r.after_digest,
                output_tail: tail,
                prev_hash: String::new(),
                hash: String::new(),
                tenant_seq: 0,
            },
        );
    }

    /// Numbers `rec` in its tenant and in the chain, seals it, and stores it
    /// with the turn.
    fn append_audit(&mut self, turn: &mut Turn, mut rec: AuditRecord) {
        let n = self.tenant_seqs.entry(rec.tenant.clone()).or_insert(0);
        *n += 1;
        rec.tenant_seq = *n;
        turn.audit_tenants.insert(rec.tenant.clone());
        let rec = self.audit.seal(audit::bounded(rec));
        turn.put(audit::record_key(rec.seq), encode(&rec));
        turn.audit_grew = true;
    }

    /// Audits a modification that is not a change request's (keys, hosts).
    pub fn audit_host(
        &mut self,
        turn: &mut Turn,
        caller: &vigie_wire::tower::Caller,
        host: &str,
        action: AuditAction,
        summary: String,
    ) {
        self.append_audit(
            turn,
            AuditRecord {
                seq: 0,
                at_ms: turn.now_ms,
                tenant: caller.tenant.clone(),
                operator: caller.operator.clone(),
                host: host.to_owned(),
                change: String::new(),
                step: None,
                action: action.as_str().to_owned(),
                summary,
                exit_code: None,
                before_digest: None,
                after_digest: None,
                output_tail: String::new(),
                prev_hash: String::new(),
                hash: String::new(),
                tenant_seq: 0,
            },
        );
    }

    /// Dispatches the head of a host's queue if the host is online and idle,
    /// or sends an unacknowledged order again.
    pub fn pump(&mut self, host: &str, now: Instant, turn: &mut Turn) {
        let Some(h) = self.hosts.get_mut(host) else {
            return;
        };
        if !h.takes_orders() {
            return;
        }
        let Some(id) = self.queues.head(host).cloned() else {
            return;
        };
        let Some((rec, program)) = self.queues.change_and_program(&id) else {
            return;
        };
        if turn.order_bytes > 0 && turn.order_bytes + program.bytes > TURN_MAX_ORDER_BYTES {
            // The next ticks dispatch it.
            return;
        }
        let resend = match rec.view.state {
            ChangeState::Queued => false,
            ChangeState::Dispatched if !rec.accepted => {
                let wait = resend_delay(self.timing.resend_after, h.resends);
                let due = h.last_order.is_none_or(|t| now.duration_since(t) >= wait);
                if !due {
                    return;
                }
                true
            }
            _ => return,
        };
        turn.order_bytes += program.bytes;
        let spec = &program.spec;
        rec.view.state = ChangeState::Dispatched;
        rec.view.updated_ms = turn.now_ms;
        h.last_order = Some(now);
        h.resends = if resend {
            h.resends.saturating_add(1)
        } else {
            0
        };
        let order = Order {
            change: id.clone(),
            host: host.to_owned(),
            seq: rec.view.seq,
            spec: ChangeSpec::clone(spec),
        };
        turn.publish
            .push((vec![host_topic(host)], Published::Order(order)));
        turn.logs.push(Log::ChangeDispatched {
            change: id.clone(),
            host: host.to_owned(),
            seq: rec.view.seq,
            resent: resend,
            waited_ms: rec.view.updated_ms.saturating_sub(rec.view.submitted_ms),
        });
        if !resend {
            turn.dirty_change(&id, rec.size_bound());
        }
    }

    /// Periodic work: liveness transitions, dispatch and resends.
    pub fn tick(&mut self, now: Instant, turn: &mut Turn) {
        self.hosts.judge_silent(now, self.timing.host_timeout, turn);
        self.tick_unjudged(now, turn);
    }

    /// A tick that judges no host silent: for a turn that left plugs'
    /// events unread (a backlog), whose heartbeats may be among them —
    /// an overloaded referee must not take its own lag for a fleet gone.
    pub fn tick_unjudged(&mut self, now: Instant, turn: &mut Turn) {
        self.idem.prune(now, turn);
        self.observed.expire_logs(now, turn);
        let busy: Vec<HostId> = self.queues.busy().cloned().collect();
        for host in busy {
            self.pump(&host, now, turn);
        }
    }

    /// Turns dirty records into writes and published updates; evicts the
    /// changes that became final.
    pub fn finish_turn(&mut self, turn: &mut Turn) {
        if std::mem::take(&mut turn.audit_grew) {
            turn.put(audit::HEAD_KEY.to_vec(), self.audit.encode_head());
        }
        for tenant in std::mem::take(&mut turn.audit_tenants) {
            if let Some(n) = self.tenant_seqs.get(&tenant) {
                turn.put(audit::tenant_key(&tenant), n.to_be_bytes().to_vec());
            }
        }
        self.hosts.persist_dirty(turn);
        for id in std::mem::take(&mut turn.dirty_changes) {
            let Some(rec) = self.queues.change(&id) else {
                continue;
            };
            turn.put(change_key(&id), encode(rec));
            let view = rec.view.clone();
            let topics = vec![
                vigie_wire::tower::change_topic(&id),
                vigie_wire::tower::ALL_CHANGES_TOPIC.to_vec(),
            ];
            turn.publish.push((topics, Published::Update(view.clone())));
            if view.state.is_final() {
                turn.put(done_key(view.seq), id.clone().into_bytes());
                self.queues.finish(&id, view);
            }
        }
        self.hosts.publish_acks(turn);
    }

    /// The queues' invariants ([`Queues::check`]), and every host with
    /// a queue known. The referee's tests check them after every stored
    /// turn.
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        self.queues.check()?;
        if self.queues.busy().any(|h| !self.hosts.contains(h)) {
            return Err("a busy host is unknown".into());
        }
        Ok(())
    }

    /// Removes a change that became final from its host's queue.
    pub fn dequeue(&mut self, host: &str, seq: u64, turn: &mut Turn) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.last_order = None;
            h.resends = 0;
        }
        self.queues.dequeue(host, seq, turn);
    }

    pub fn persist_next_seq(&self, turn: &mut Turn) {
        self.queues.persist_next_seq(turn);
    }
}
