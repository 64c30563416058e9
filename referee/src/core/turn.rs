//! What one loop turn of the referee produces. Nothing leaves the process
//! before the turn's writes are durably stored: replies, orders, updates
//! and lifecycle events are all released after the commit.

use std::collections::BTreeSet;

use vigie_wire::tower::{ApiReply, ChangeId, HostId, Published};

#[derive(Debug, Default)]
pub struct Turn {
    /// Escalator batch operations: `None` deletes.
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    /// Changes whose record must be rewritten and announced.
    pub dirty_changes: BTreeSet<ChangeId>,
    pub dirty_hosts: BTreeSet<HostId>,
    /// Hosts whose report acknowledgement must be published.
    pub acks: BTreeSet<HostId>,
    /// Messages to publish after the commit, each encoded once for all
    /// its topics.
    pub publish: Vec<(Vec<Vec<u8>>, Published)>,
    pub replies: Vec<(Vec<u8>, ApiReply)>,
    pub logs: Vec<Log>,
    /// Bytes of keys and values in `writes`: a turn stops taking work
    /// before its batch nears Escalator's limits.
    pub bytes: usize,
    /// Bytes `finish_turn` will write for the dirty changes (their
    /// records), counted when a change first becomes dirty.
    pub reserved: usize,
    /// Bytes of the programs in the orders published (see
    /// `TURN_MAX_ORDER_BYTES`).
    pub order_bytes: usize,
    /// The audit chain grew: its head is written once, at the end.
    pub audit_grew: bool,
    /// Tenants whose audit number moved: each written once, at the end.
    pub audit_tenants: BTreeSet<String>,
}

/// A turn takes no more work past these: one Escalator batch must hold it
/// (limits: 100,000 operations, a 16 MiB frame).
pub const TURN_MAX_WRITES: usize = 40_000;
pub const TURN_MAX_BYTES: usize = 5 << 20;
/// The most one message may add to a turn that still took it: a
/// submission bigger than this is refused (`api.rs`). A turn stops taking
/// work at `TURN_MAX_BYTES`, so its batch stays under
/// `TURN_MAX_BYTES + WORK_MAX_BYTES` plus the encoding's overhead.
pub const WORK_MAX_BYTES: usize = 9 << 20;
/// Most writes one message may add (a submission's queue, change and audit
/// records for `MAX_SUBMIT_HOSTS`, with room to spare).
pub const WORK_MAX_WRITES: usize = 20_000;
const _: () = assert!(
    TURN_MAX_BYTES + WORK_MAX_BYTES + (2 << 20) <= vigie_wire::limits::MAX_FRAME
        && TURN_MAX_WRITES + WORK_MAX_WRITES + 20_000 <= vigie_wire::limits::MAX_BATCH_OPS
);

impl Turn {
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.bytes += key.len() + value.len();
        self.writes.push((key, Some(value)));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.bytes += key.len();
        self.writes.push((key, None));
    }

    /// Marks a change's record to be written and announced at the end of
    /// the turn; `bytes` (its record's size, or a bound) counts in the
    /// turn's size the first time.
    pub fn dirty_change(&mut self, id: &str, bytes: usize) {
        if self.dirty_changes.insert(id.to_owned()) {
            self.reserved += bytes + id.len() + 16;
        }
    }

    /// Whether the turn should stop taking new work.
    pub fn full(&self) -> bool {
        self.writes.len() + self.dirty_changes.len() >= TURN_MAX_WRITES
            || self.bytes + self.reserved >= TURN_MAX_BYTES
    }
}

/// Lifecycle events, logged once their state is stored. Names are stable:
/// tests and operators wait on them.
#[derive(Debug, Clone)]
pub enum Log {
    HostRegistered {
        host: HostId,
    },
    HostOnline {
        host: HostId,
    },
    HostOffline {
        host: HostId,
    },
    /// Its plug cannot journal and refuses orders.
    HostRefusing {
        host: HostId,
        reason: String,
    },
    /// Its plug journals again and takes orders.
    HostResumed {
        host: HostId,
    },
    HostReset {
        host: HostId,
        incarnation: u64,
    },
    KeyChanged {
        host: HostId,
        public: String,
        state: &'static str,
    },
    OperatorChanged {
        name: String,
        tenant: String,
        revoked: bool,
    },
    KeysPending {
        stored: usize,
        dropped: u64,
    },
    IncarnationIssued {
        host: HostId,
        incarnation: u64,
    },
    ChangeQueued {
        change: ChangeId,
        host: HostId,
        seq: u64,
        tenant: String,
    },
    ChangeDispatched {
        change: ChangeId,
        host: HostId,
        seq: u64,
        resent: bool,
        /// Wall-clock time since the submission (metrics only, never
        /// used to order anything).
        waited_ms: u64,
    },
    ChangeAccepted {
        change: ChangeId,
        host: HostId,
    },
    StepStarted {
        change: ChangeId,
        host: HostId,
        step: u32,
    },
    /// A step's result, or its undo's (`undo`).
    StepResult {
        change: ChangeId,
        host: HostId,
        step: u32,
        undo: bool,
        ok: bool,
        summary: String,
        /// The step's kind (`run`, `file`, ...).
        kind: String,
    },
    ChangeFinished {
        change: ChangeId,
        host: HostId,
        state: &'static str,
        tenant: String,
        /// Wall-clock time since the submission (metrics only).
        took_ms: u64,
    },
    ChangeCancelled {
        change: ChangeId,
        host: HostId,
        tenant: String,
    },
    ChangeAbandoned {
        change: ChangeId,
        host: HostId,
    },
    HostRemoved {
        host: HostId,
    },
    HostHeld {
        host: HostId,
        held: bool,
    },
    ReportRejected {
        host: HostId,
        seq: u64,
        reason: &'static str,
    },
    Catalog(crate::core::catalog_log::CatalogLog),
}

impl Log {
    pub fn emit(&self) {
        use tracing::{info, warn};
        match self {
            Log::HostRegistered { host } => info!(event = "host_registered", host),
            Log::HostOnline { host } => info!(event = "host_online", host),
            Log::HostOffline { host } => info!(event = "host_offline", host),
            Log::HostRefusing { host, reason } => warn!(event = "host_refusing", host, reason),
            Log::HostResumed { host } => info!(event = "host_resumed", host),
            Log::KeyChanged {
                host,
                public,
                state,
            } => {
                info!(event = "key_changed", host, public, state)
            }
            Log::OperatorChanged {
                name,
                tenant,
                revoked,
            } => info!(event = "operator_changed", operator = name, tenant, revoked),
            Log::KeysPending { stored, dropped } => {
                warn!(event = "keys_pending", stored, dropped)
            }
            Log::IncarnationIssued { host, incarnation } => {
                info!(event = "incarnation_issued", host, incarnation)
            }
            Log::HostReset { host, incarnation } => {
                warn!(event = "host_reset", host, incarnation)
            }
            Log::ChangeQueued {
                change,
                host,
                seq,
                tenant,
            } => {
                info!(event = "change_queued", change, host, seq, tenant)
            }
            Log::ChangeDispatched { .. } => self.emit_dispatched(),
            Log::ChangeAccepted { change, host } => info!(event = "change_accepted", change, host),
            Log::StepStarted { change, host, step } => {
                info!(event = "step_started", change, host, step)
            }
            Log::StepResult { .. } => self.emit_step(),
            Log::ChangeFinished { .. } => self.emit_finished(),
            Log::ChangeCancelled {
                change,
                host,
                tenant,
            } => {
                info!(event = "change_cancelled", change, host, tenant)
            }
            Log::ChangeAbandoned { change, host } => {
                warn!(event = "change_abandoned", change, host)
            }
            Log::HostRemoved { host } => info!(event = "host_removed", host),
            Log::HostHeld { host, held } => info!(event = "host_held", host, held),
            Log::ReportRejected { host, seq, reason } => {
                warn!(event = "report_rejected", host, seq, reason)
            }
            Log::Catalog(c) => c.emit(),
        }
    }

    fn emit_dispatched(&self) {
        use tracing::info;
        let Log::ChangeDispatched {
            change,
            host,
            seq,
            resent,
            waited_ms,
        } = self
        else {
            return;
        };
        info!(
            event = "change_dispatched",
            change, host, seq, resent, waited_ms
        )
    }

    fn emit_step(&self) {
        use tracing::info;
        let Log::StepResult {
            change,
            host,
            step,
            undo,
            ok,
            summary,
            kind,
        } = self
        else {
            return;
        };
        let event = match (undo, ok) {
            (false, true) => "step_succeeded",
            (false, false) => "step_failed",
            (true, true) => "step_undone",
            (true, false) => "undo_failed",
        };
        info!(event, change, host, step, summary, kind)
    }

    fn emit_finished(&self) {
        use tracing::info;
        let Log::ChangeFinished {
            change,
            host,
            state,
            tenant,
            took_ms,
        } = self
        else {
            return;
        };
        info!(
            event = "change_finished",
            change, host, state, tenant, took_ms
        )
    }
}
