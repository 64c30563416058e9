//! What the referee stores, and where, in Escalator's `tower` database.
//!
//! - `host/<id>`            → [`HostRecord`]
//! - `change/<id>`          → [`ChangeRecord`] (its current view)
//! - `spec/<id>`            → a submission's [`ChangeSpec`], written once
//!   and shared by its changes (named after the first of them)
//! - `done/<seq>`           → change id, once the change is final (the
//!   index `status` lists recent changes from after a restart)
//! - `queue/<host>/<seq>`   → change id, while the change is not final
//! - `meta/next_seq`        → the next sequence number
//! - `operator/<tenant>/<name>` → an operator (`operators.rs`)
//! - `key/<public>`         → an agent's key record (`keys.rs`)
//! - `idem/<tenant>/<operator>/<key>` → a call's first answer (`idem.rs`)
//! - `deploy/<tenant>/<app>/<environment>` → the deployer's record of an
//!   environment (`deployments.rs`)
//! - `rollout/<tenant>/<app>/<environment>` → the deploy the tower runs
//!   (or ran last) for that environment: its lock while not ended, its
//!   lines, the deploy daemon's state (`rollouts.rs`).
//! - `audit/rec/<seq>`, `audit/head` → the audit chain (see `audit.rs`)
//! - `server/`, `session/`, `pool/`, `ip/`, `app/` → the catalogs
//!   (`catalog.rs`)
//! - `audit/tenant/<tenant>` → the tenant's last audit number
//!
//! Sequence numbers are zero-padded so that key order is FIFO order.

use serde::{Deserialize, Serialize};
use vigie_wire::tower::{ChangeView, HostId, Labels};

pub const DB: &str = "tower";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub id: HostId,
    pub tenant: String,
    pub labels: Labels,
    /// The last plug report applied: the next one must be `report_seq + 1`.
    pub report_seq: u64,
    /// The plug's journal the reports are numbered in (a new journal —
    /// a reinstalled host — numbers from 1 again).
    pub incarnation: u64,
    /// The last incarnation handed out to this host: above `incarnation`
    /// while its new journal has not used it yet.
    #[serde(default)]
    pub issued: u64,
    /// An operator holds the queue: nothing is dispatched until released.
    #[serde(default)]
    pub held: bool,
}

impl HostRecord {
    /// A host just registered: no report, journal or hold yet.
    pub fn new(id: &str, tenant: &str, labels: Labels) -> Self {
        Self {
            id: id.to_owned(),
            tenant: tenant.to_owned(),
            labels,
            report_seq: 0,
            incarnation: 0,
            issued: 0,
            held: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    pub view: ChangeView,
    /// The plug acknowledged the order: stop resending it.
    pub accepted: bool,
    /// The key of its program under `spec/`.
    pub spec_id: String,
}

impl ChangeRecord {
    /// A bound on the size of this record once encoded, without encoding
    /// it: what a turn counts for it (`Turn::dirty_change`).
    pub fn size_bound(&self) -> usize {
        let v = &self.view;
        let text = |r: &Option<vigie_wire::change::StepResult>| {
            r.as_ref().map_or(0, |r| {
                r.summary.len()
                    + r.stdout_tail.len()
                    + r.stderr_tail.len()
                    + r.before_digest.as_ref().map_or(0, String::len)
                    + r.after_digest.as_ref().map_or(0, String::len)
                    + 64
            })
        };
        128 + v.id.len()
            + v.host.len()
            + v.tenant.len()
            + v.operator.len()
            + v.title.len()
            + self.spec_id.len()
            + v.steps
                .iter()
                .map(|s| 32 + s.name.len() + s.kind.len() + text(&s.result) + text(&s.undo))
                .sum::<usize>()
    }
}

/// A tenant's environment's deployment record (`deployments`).
/// Where the deploys the tower runs are kept, one per environment.
pub const ROLLOUT_PREFIX: &str = "rollout/";

/// Where every tenant's deployments are.
pub const DEPLOY_PREFIX: &str = "deploy/";

/// The store prefixes of an application's deployments and rollouts
/// (what `apps remove` reads to know whether a version is in use).
pub fn app_prefixes(tenant: &str, app: &str) -> [Vec<u8>; 2] {
    [
        format!("{DEPLOY_PREFIX}{tenant}/{app}/").into_bytes(),
        format!("{ROLLOUT_PREFIX}{tenant}/{app}/").into_bytes(),
    ]
}

pub fn rollout_key(tenant: &str, app: &str, environment: &str) -> Vec<u8> {
    format!("{ROLLOUT_PREFIX}{tenant}/{app}/{environment}").into_bytes()
}

pub fn deployment_key(tenant: &str, app: &str, environment: &str) -> Vec<u8> {
    format!("deploy/{tenant}/{app}/{environment}").into_bytes()
}

/// An agent's key in the registry, by its public key.
pub fn key_key(public: &str) -> Vec<u8> {
    format!("key/{public}").into_bytes()
}

pub fn host_key(id: &str) -> Vec<u8> {
    format!("host/{id}").into_bytes()
}

pub fn change_key(id: &str) -> Vec<u8> {
    format!("change/{id}").into_bytes()
}

pub fn spec_key(id: &str) -> Vec<u8> {
    format!("spec/{id}").into_bytes()
}

pub fn queue_key(host: &str, seq: u64) -> Vec<u8> {
    format!("queue/{host}/{seq:020}").into_bytes()
}

pub fn done_key(seq: u64) -> Vec<u8> {
    format!("done/{seq:020}").into_bytes()
}

pub const NEXT_SEQ_KEY: &[u8] = b"meta/next_seq";

pub fn change_id(seq: u64) -> String {
    format!("c{seq}")
}
