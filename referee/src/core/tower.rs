//! The referee's state: hosts, their FIFO queues, the changes not yet final,
//! and the audit chain's head. Mutations go through a [`Turn`] that records
//! the writes, orders and events they imply; `finish_turn` turns dirty
//! records into writes and updates.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{
    host_topic, AuditRecord, ChangeId, ChangeState, ChangeView, HostId, Order, Published,
};

use crate::core::audit::{self, AuditAction, AuditChain};
use crate::core::codec::{corrupt, decode, encode};
use crate::core::model::{
    change_key, done_key, host_key, key_key, queue_key, spec_key, ChangeRecord, HostRecord,
    NEXT_SEQ_KEY,
};
use crate::core::table::Table;
use crate::core::turn::{Log, Turn};
use crate::error::RefereeError;
use crate::shell::clock::now_ms;
use crate::shell::store::{scan_all, Store};

/// How many finished changes `status` lists from memory.
pub const RECENT: usize = 1_000;

#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// A host without a heartbeat for this long is offline.
    pub host_timeout: Duration,
    /// An order not acknowledged after this long is sent again.
    pub resend_after: Duration,
}

#[derive(Debug)]
pub struct HostState {
    pub rec: HostRecord,
    /// The labels its plug announces: shown, never used to target.
    pub reported: vigie_wire::tower::Labels,
    pub last_seen: Option<Instant>,
    pub online: bool,
    /// Why its plug refuses orders (it cannot journal), from its last
    /// heartbeat: nothing is dispatched to it meanwhile.
    pub refusing: Option<String>,
    /// Changes not final, by sequence: the head is in flight or next.
    pub queue: BTreeMap<u64, ChangeId>,
    pub last_order: Option<Instant>,
}

impl HostState {
    pub fn new(rec: HostRecord) -> Self {
        Self {
            rec,
            reported: Default::default(),
            last_seen: None,
            online: false,
            refusing: None,
            queue: BTreeMap::new(),
            last_order: None,
        }
    }
}

pub struct Tower {
    pub hosts: BTreeMap<HostId, HostState>,
    pub changes: HashMap<ChangeId, ChangeRecord>,
    /// Programs of the changes not final, by spec id.
    pub specs: HashMap<String, Program>,
    pub recent: VecDeque<ChangeView>,
    /// Hosts with a non-empty queue: the only ones a tick must look at.
    pub busy: BTreeSet<HostId>,
    pub next_seq: u64,
    pub audit: AuditChain,
    pub timing: Timing,
    /// Idempotency keys of recent calls and their answers.
    pub idem: crate::core::idem::Remembered,
    /// The key registry by public key, read once at start and kept
    /// current by `keys.rs` (a scan per registration made enrolment
    /// quadratic).
    pub keys: Table<String, vigie_wire::front::KeyRecord>,
    /// The operators, read once at start and kept current by
    /// `operators.rs`: every call of a turn sees the ones before it.
    pub operators: Vec<vigie_wire::front::OperatorRecord>,
    /// Servers, sessions, pools, applications (`catalog.rs`).
    pub catalog: crate::core::catalog::Catalog,
    /// The setup's label rules, applied to every host when it registers.
    pub rules: Vec<crate::core::labels::LabelRule>,
    /// Each tenant's last audit number (`AuditRecord::tenant_seq`).
    pub tenant_seqs: HashMap<String, u64>,
    /// Host metrics and waiting logs requests: memory only (`observe.rs`).
    pub observed: crate::core::observed::Observed,
    /// The shares of bounded resources (the setup's `limits:`).
    pub limits: vigie_wire::limits::Shares,
    /// The launcher's latest word on every daemon (`health.rs`); `None`
    /// until it comes, or without a launcher.
    pub health: Option<vigie_wire::lifecycle::TowerHealth>,
}

/// A submission's program, shared by its changes.
#[derive(Debug)]
pub struct Program {
    pub spec: Arc<ChangeSpec>,
    /// How many changes not final run it.
    pub users: usize,
    /// Its encoded size: what an order for it weighs.
    pub bytes: usize,
}

/// Most bytes of orders one turn publishes: a large program to thousands
/// of hosts goes out over several turns (the rest stays queued and is
/// dispatched by the next ticks) instead of holding thousands of copies
/// of it in memory at once.
pub const TURN_MAX_ORDER_BYTES: usize = 64 << 20;

impl Tower {
    /// Rebuilds the state from what Escalator holds.
    pub fn load(db: &dyn Store, timing: Timing) -> Result<Self, RefereeError> {
        let mut t = Tower {
            hosts: BTreeMap::new(),
            changes: HashMap::new(),
            specs: HashMap::new(),
            recent: VecDeque::new(),
            busy: BTreeSet::new(),
            next_seq: 1,
            audit: AuditChain::default(),
            timing,
            idem: crate::core::idem::Remembered::load(db)?,
            keys: Table::loaded(HashMap::new(), |public| key_key(public)),
            operators: scan_all(db, b"operator/").map_err(|f| corrupt(b"operator/", f.message))?,
            catalog: crate::core::catalog::Catalog::load(db)?,
            rules: Vec::new(),
            tenant_seqs: HashMap::new(),
            observed: Default::default(),
            limits: Default::default(),
            health: None,
        };
        t.load_counters(db)?;
        let mut keys = HashMap::new();
        for e in db.scan(b"key/", None) {
            let (key, value) = e?;
            let rec: vigie_wire::front::KeyRecord = decode(&key, &value)?;
            keys.insert(rec.public.clone(), rec);
        }
        t.keys = Table::loaded(keys, |public| key_key(public));
        for e in db.scan(b"host/", None) {
            let (key, value) = e?;
            let rec: HostRecord = decode(&key, &value)?;
            t.hosts.insert(rec.id.clone(), HostState::new(rec));
        }
        for e in db.scan(b"queue/", None) {
            let (key, value) = e?;
            t.load_queued(db, &key, value)?;
        }
        t.load_recent(db)?;
        Ok(t)
    }

    /// Each tenant's last audit number, the next sequence, the audit head.
    fn load_counters(&mut self, db: &dyn Store) -> Result<(), RefereeError> {
        for e in db.scan(audit::TENANT_PREFIX, None) {
            let (key, value) = e?;
            let bytes: [u8; 8] = value
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(&key, "not 8 bytes"))?;
            let tenant = String::from_utf8_lossy(&key[audit::TENANT_PREFIX.len()..]).into_owned();
            self.tenant_seqs.insert(tenant, u64::from_be_bytes(bytes));
        }
        if let Some(v) = db.get(NEXT_SEQ_KEY)? {
            let bytes: [u8; 8] = v
                .as_slice()
                .try_into()
                .map_err(|_| corrupt(NEXT_SEQ_KEY, "not 8 bytes"))?;
            self.next_seq = u64::from_be_bytes(bytes);
        }
        if let Some(v) = db.get(audit::HEAD_KEY)? {
            self.audit =
                AuditChain::decode_head(&v).ok_or_else(|| corrupt(audit::HEAD_KEY, "bad head"))?;
        }
        Ok(())
    }

    /// A queued change (`queue/` entry `key` naming change `value`): its
    /// record, its program, its place in its host's queue.
    fn load_queued(
        &mut self,
        db: &dyn Store,
        key: &[u8],
        value: Vec<u8>,
    ) -> Result<(), RefereeError> {
        let id = String::from_utf8(value).map_err(|err| corrupt(key, err))?;
        let ck = change_key(&id);
        let rec: ChangeRecord = decode(&ck, &db.get(&ck)?.ok_or_else(|| corrupt(&ck, "missing"))?)?;
        if !self.specs.contains_key(&rec.spec_id) {
            let sk = spec_key(&rec.spec_id);
            let bytes = db.get(&sk)?.ok_or_else(|| corrupt(&sk, "missing"))?;
            let spec: ChangeSpec = decode(&sk, &bytes)?;
            let program = Program {
                spec: Arc::new(spec),
                users: 0,
                bytes: bytes.len(),
            };
            self.specs.insert(rec.spec_id.clone(), program);
        }
        if let Some(entry) = self.specs.get_mut(&rec.spec_id) {
            entry.users += 1;
        }
        let host = rec.view.host.clone();
        let h = self
            .hosts
            .get_mut(&host)
            .ok_or_else(|| corrupt(key, "queued for an unknown host"))?;
        h.queue.insert(rec.view.seq, id.clone());
        self.busy.insert(host);
        self.changes.insert(id, rec);
        Ok(())
    }

    /// The most recent final changes, for `status` without an id: only
    /// those of the last `RECENT` sequence numbers, so a start reads a
    /// bounded part of history (older ones are read when asked for, by
    /// `fetch.rs`). The start is a whole key: one without its `done/`
    /// prefix sorts below it and Escalator would scan every final change.
    fn load_recent(&mut self, db: &dyn Store) -> Result<(), RefereeError> {
        let from = done_key(self.next_seq.saturating_sub(RECENT as u64));
        for e in db.scan(b"done/", Some(&from)) {
            let (_, value) = e?;
            let ck = change_key(&String::from_utf8_lossy(&value));
            if let Some(v) = db.get(&ck)? {
                self.recent.push_back(decode::<ChangeRecord>(&ck, &v)?.view);
            }
        }
        Ok(())
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
                at_ms: now_ms(),
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
                at_ms: now_ms(),
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
        if !h.online || h.rec.held || h.refusing.is_some() {
            return;
        }
        let Some(id) = h.queue.values().next().cloned() else {
            return;
        };
        let Some(rec) = self.changes.get_mut(&id) else {
            return;
        };
        let Some(program) = self.specs.get(&rec.spec_id) else {
            return;
        };
        if turn.order_bytes > 0 && turn.order_bytes + program.bytes > TURN_MAX_ORDER_BYTES {
            // The next ticks dispatch it.
            return;
        }
        let resend = match rec.view.state {
            ChangeState::Queued => false,
            ChangeState::Dispatched if !rec.accepted => {
                let due = h
                    .last_order
                    .is_none_or(|t| now.duration_since(t) >= self.timing.resend_after);
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
        rec.view.updated_ms = now_ms();
        h.last_order = Some(now);
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
        let timeout = self.timing.host_timeout;
        for (id, h) in self.hosts.iter_mut() {
            let alive = h.last_seen.is_some_and(|t| now.duration_since(t) < timeout);
            if h.online && !alive {
                h.online = false;
                turn.logs.push(Log::HostOffline { host: id.clone() });
            }
        }
        self.tick_unjudged(now, turn);
    }

    /// A tick that judges no host silent: for a turn that left plugs'
    /// events unread (a backlog), whose heartbeats may be among them —
    /// an overloaded referee must not take its own lag for a fleet gone.
    pub fn tick_unjudged(&mut self, now: Instant, turn: &mut Turn) {
        self.idem.prune(now, turn);
        self.expire_logs(now, turn);
        let busy: Vec<HostId> = self.busy.iter().cloned().collect();
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
        for id in std::mem::take(&mut turn.dirty_hosts) {
            if let Some(h) = self.hosts.get(&id) {
                turn.put(host_key(&id), encode(&h.rec));
            }
        }
        for id in std::mem::take(&mut turn.dirty_changes) {
            let Some(rec) = self.changes.get(&id) else {
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
                if let Some(rec) = self.changes.remove(&id) {
                    self.release_spec(&rec.spec_id);
                }
                self.recent.push_back(view);
                if self.recent.len() > RECENT {
                    self.recent.pop_front();
                }
            }
        }
        for host in std::mem::take(&mut turn.acks) {
            if let Some(h) = self.hosts.get(&host) {
                let ack = Published::ReportAck {
                    host: host.clone(),
                    upto: h.rec.report_seq,
                };
                turn.publish.push((vec![host_topic(&host)], ack));
            }
        }
    }

    /// The queues' invariants, as they hold between turns: each change not
    /// final is in its host's queue at its sequence and nowhere else,
    /// `busy` is exactly the hosts with a queue, each program is counted by
    /// the changes that run it, and `next_seq` is above every sequence.
    /// The referee's tests check them after every stored turn.
    #[cfg(test)]
    pub fn check(&self) -> Result<(), String> {
        let mut queued = 0;
        for (host, h) in &self.hosts {
            for (seq, id) in &h.queue {
                let rec = self
                    .changes
                    .get(id)
                    .ok_or_else(|| format!("{host} queues {id}, unknown"))?;
                if (&rec.view.host, rec.view.seq) != (host, *seq) {
                    return Err(format!("{id} is queued on {host} at {seq}, not its own"));
                }
                if *seq >= self.next_seq {
                    return Err(format!("{id} has {seq}, next_seq is {}", self.next_seq));
                }
                queued += 1;
            }
            if h.queue.is_empty() == self.busy.contains(host) {
                return Err(format!("{host}: busy is not whether it has a queue"));
            }
        }
        if queued != self.changes.len() || self.busy.iter().any(|h| !self.hosts.contains_key(h)) {
            return Err("a change not final is in no queue, or a busy host is unknown".into());
        }
        let mut users: HashMap<&str, usize> = HashMap::new();
        for rec in self.changes.values() {
            *users.entry(rec.spec_id.as_str()).or_default() += 1;
        }
        for (id, p) in &self.specs {
            if users.get(id.as_str()) != Some(&p.users) {
                return Err(format!("program {id} counts {} users", p.users));
            }
        }
        if users.keys().any(|id| !self.specs.contains_key(*id)) {
            return Err("a change runs a program not held".into());
        }
        Ok(())
    }

    /// One change fewer uses this program: forget it when none does.
    fn release_spec(&mut self, spec_id: &str) {
        if let Some(entry) = self.specs.get_mut(spec_id) {
            entry.users = entry.users.saturating_sub(1);
            if entry.users == 0 {
                self.specs.remove(spec_id);
            }
        }
    }

    /// Removes a change that became final from its host's queue.
    pub fn dequeue(&mut self, host: &str, seq: u64, turn: &mut Turn) {
        if let Some(h) = self.hosts.get_mut(host) {
            h.queue.remove(&seq);
            h.last_order = None;
            if h.queue.is_empty() {
                self.busy.remove(host);
            }
        }
        turn.delete(queue_key(host, seq));
    }

    pub fn persist_next_seq(&self, turn: &mut Turn) {
        turn.put(NEXT_SEQ_KEY.to_vec(), self.next_seq.to_be_bytes().to_vec());
    }
}
