//! The tower's messages: plugs ↔ referee, and the operator's API.
//!
//! Sockets:
//! - plug → referee: PUSH → PULL, [`PlugEvent`] (heartbeats and reports);
//! - referee → plugs and watchers: PUB → SUB, two frames: a topic (see
//!   [`host_topic`], [`change_topic`]) then a [`Published`] message;
//! - operator → referee: DEALER → ROUTER, [`ApiRequest`] / [`ApiReply`].

use serde::{Deserialize, Serialize};

use crate::change::{ChangeSpec, StepResult};
pub use crate::ids::{ChangeId, HostId, Labels};

/// The PUB topic of one host. The trailing NUL makes SUB's prefix filter an
/// exact match: `web-1\0` is not a prefix of `web-10\0`.
pub fn host_topic(host: &str) -> Vec<u8> {
    let mut t = host.as_bytes().to_vec();
    t.push(0);
    t
}

/// The PUB topic of one change's updates (host ids never start with '@').
pub fn change_topic(change: &str) -> Vec<u8> {
    let mut t = b"@change/".to_vec();
    t.extend_from_slice(change.as_bytes());
    t.push(0);
    t
}

/// The PUB topic on which every change update is also published.
pub const ALL_CHANGES_TOPIC: &[u8] = b"@changes\0";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlugEvent {
    /// "I am alive" (every half second or so), with what the plug is running.
    Heartbeat {
        host: HostId,
        /// The plug's journal (see [`Report::incarnation`]); 0 for a new
        /// journal still waiting for the referee to hand it one.
        incarnation: u64,
        labels: Labels,
        busy: Option<ChangeId>,
        /// Why the plug refuses new orders (its journal cannot be
        /// written: a full or failing disk); `None` when it takes them.
        #[serde(default)]
        refusing: Option<String>,
    },
    Report(Report),
    /// The host's resources, every few seconds (not every heartbeat).
    HostMetrics(crate::observe::HostSample),
    /// The answer to a `Published::LogsRequest`.
    Logs(crate::observe::LogsChunk),
}

impl PlugEvent {
    /// The host the event speaks for.
    pub fn host(&self) -> &str {
        match self {
            PlugEvent::Heartbeat { host, .. } => host,
            PlugEvent::Report(r) => &r.host,
            PlugEvent::HostMetrics(s) => &s.host,
            PlugEvent::Logs(l) => &l.host,
        }
    }
}

/// A plug's report. `seq` counts the host's reports from 1 without gaps;
/// the referee applies report `n` only after `n - 1`, exactly once, and
/// acknowledges with [`Published::ReportAck`]; the plug resends until then.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub host: HostId,
    /// Which journal the plug numbers its reports in: made when the journal
    /// is created, larger for a later one. A host whose journal was lost
    /// (reinstalled) numbers from 1 again in a new incarnation.
    pub incarnation: u64,
    pub seq: u64,
    pub change: ChangeId,
    pub at_ms: u64,
    pub kind: ReportKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportKind {
    /// The order was received, journaled, and will run.
    Accepted,
    StepStarted {
        step: u32,
    },
    StepFinished {
        step: u32,
        result: StepResult,
    },
    UndoStarted {
        step: u32,
    },
    UndoFinished {
        step: u32,
        result: StepResult,
    },
    Finished {
        outcome: Outcome,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    /// Every started step was undone. `failed_step` is the step that failed
    /// (none when the plug was interrupted by a crash and rolled back after,
    /// or stopped).
    RolledBack {
        failed_step: Option<u32>,
        interrupted: bool,
        /// The tower was stopping: the step in flight finished, the next
        /// one did not start, and the steps done were undone.
        #[serde(default)]
        stopped: bool,
    },
    RollbackFailed {
        failed_step: Option<u32>,
        interrupted: bool,
        #[serde(default)]
        stopped: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Published {
    /// Run this change. Bound to its change id and host: a plug refuses an
    /// order for another host, or one it already ran.
    Order(Order),
    ReportAck {
        host: HostId,
        upto: u64,
    },
    /// A change's new state, after it was durably stored.
    Update(ChangeView),
    /// A key of the registry changed (topic `KEYS_TOPIC`), after it was
    /// durably stored.
    Key(crate::access::KeyRecord),
    /// An operator was added, changed or revoked (topic `KEYS_TOPIC`).
    Operator(crate::access::OperatorRecord),
    /// The incarnation a plug with a new journal numbers its reports in,
    /// handed out by the referee (never a clock: a host whose clock is
    /// behind must still come back).
    Incarnation {
        host: HostId,
        incarnation: u64,
    },
    /// Send these logs (on the host's exact topic).
    LogsRequest(crate::observe::LogsRequest),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub change: ChangeId,
    pub host: HostId,
    /// The referee's sequence: the FIFO order of changes.
    pub seq: u64,
    pub spec: ChangeSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeState {
    Queued,
    Dispatched,
    Running {
        step: u32,
    },
    RollingBack {
        step: u32,
    },
    Succeeded,
    RolledBack {
        failed_step: Option<u32>,
        interrupted: bool,
        /// Cut by a stop of the tower (see `Outcome::RolledBack`).
        #[serde(default)]
        stopped: bool,
    },
    RollbackFailed {
        failed_step: Option<u32>,
        interrupted: bool,
        #[serde(default)]
        stopped: bool,
    },
    Cancelled,
    /// An operator declared the change's host lost while the change was in
    /// flight: its outcome on the host is unknown, and it is never sent
    /// again (a plug that comes back has its reports consumed, not applied).
    Abandoned,
}

impl ChangeState {
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Succeeded
                | Self::RolledBack { .. }
                | Self::RollbackFailed { .. }
                | Self::Cancelled
                | Self::Abandoned
        )
    }

    /// One stable word for logs, events and the CLI.
    pub fn word(&self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Dispatched => "dispatched",
            Self::Running { .. } => "running",
            Self::RollingBack { .. } => "rolling_back",
            Self::Succeeded => "succeeded",
            Self::RolledBack { .. } => "rolled_back",
            Self::RollbackFailed { .. } => "rollback_failed",
            Self::Cancelled => "cancelled",
            Self::Abandoned => "abandoned",
        }
    }
}

impl From<Outcome> for ChangeState {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Succeeded => Self::Succeeded,
            Outcome::RolledBack {
                failed_step,
                interrupted,
                stopped,
            } => Self::RolledBack {
                failed_step,
                interrupted,
                stopped,
            },
            Outcome::RollbackFailed {
                failed_step,
                interrupted,
                stopped,
            } => Self::RollbackFailed {
                failed_step,
                interrupted,
                stopped,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    Pending,
    Running,
    Succeeded,
    Failed,
    Undoing,
    Undone,
    UndoFailed,
    /// Never ran: an earlier step failed, or the change was interrupted.
    Skipped,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepView {
    pub name: String,
    pub kind: String,
    pub status: StepStatus,
    pub result: Option<StepResult>,
    pub undo: Option<StepResult>,
}

/// A change request as the referee knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeView {
    pub id: ChangeId,
    pub host: HostId,
    pub seq: u64,
    pub tenant: String,
    pub operator: String,
    pub title: String,
    pub state: ChangeState,
    pub steps: Vec<StepView>,
    pub submitted_ms: u64,
    pub updated_ms: u64,
    /// What a queued change waits for, in answers (never stored).
    #[serde(default)]
    pub waiting: Option<Waiting>,
}

/// Why a queued change has not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Waiting {
    /// Its host's plug or agent is not connected: it starts when it is.
    HostOffline,
    /// An operator holds the host's queue (`vigie hosts release` lets it go).
    HostHeld,
    /// Changes ahead of it in its host's queue (the host runs one at a time).
    Behind { ahead: u32 },
}

impl Waiting {
    /// For humans: what the change waits for.
    pub fn text(&self, host: &str) -> String {
        match self {
            Waiting::HostOffline => {
                format!("host {host} is offline: the change starts when it comes online")
            }
            Waiting::HostHeld => {
                format!("the queue of host {host} is held: `vigie hosts release {host}`")
            }
            Waiting::Behind { ahead } => {
                format!("{ahead} change(s) ahead of it on host {host}")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostView {
    pub id: HostId,
    pub tenant: String,
    /// The labels operators and setup rules gave the host: the only ones
    /// targeting and scopes use.
    pub labels: Labels,
    /// What the host's plug says of itself: shown, never trusted.
    pub reported: Labels,
    pub online: bool,
    pub queued: u32,
    pub in_flight: Option<ChangeId>,
    /// An operator holds its queue: nothing is dispatched to it.
    #[serde(default)]
    pub held: bool,
    /// Why the host's plug refuses orders (see `PlugEvent::Heartbeat`):
    /// nothing is dispatched to it meanwhile.
    #[serde(default)]
    pub refusing: Option<String>,
    /// Why the host's plug is not running, when its launcher says so
    /// (`restarting: exit 1, next try in 2m`); `None` for a host served
    /// by an agent or a plug that runs.
    #[serde(default)]
    pub plug_down: Option<String>,
}

/// Who is asking. The majordomo builds it from the operator's
/// authenticated key; only tower-internal clients state it themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The tenant the call acts in.
    pub tenant: String,
    pub operator: String,
    /// The hosts this call may see and touch, from the operator's grants
    /// for the call's verb.
    pub scope: Scope,
    pub origin: Origin,
}

/// Where a call comes from: the referee checks an operator's own record
/// (grants, revocation) for what the front door cannot judge alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Origin {
    /// The tower itself (launcher, majordomo's knocks, tests inside it).
    Tower,
    /// An operator, whose record lives in this tenant (which differs from
    /// [`Caller::tenant`] when a `tenants.admin` acts in another tenant).
    Operator { home: String },
}

impl Caller {
    /// A tower-internal caller: every host of its tenant.
    pub fn internal(tenant: &str, operator: &str) -> Self {
        Self {
            tenant: tenant.to_owned(),
            operator: operator.to_owned(),
            scope: Scope::All,
            origin: Origin::Tower,
        }
    }

    /// The tenant of the caller's own operator record.
    pub fn home(&self) -> &str {
        match &self.origin {
            Origin::Tower => &self.tenant,
            Origin::Operator { home } => home,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scope {
    /// Every host of the caller's tenant.
    All,
    /// The hosts any of these selectors match (`web-*`, `role=web`, …).
    Only(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiRequest {
    pub id: u64,
    pub caller: Caller,
    pub call: ApiCall,
    /// Set by the client on calls that change things: a retry with the
    /// same key gets the first answer instead of acting twice.
    pub idem: Option<IdemKey>,
}

/// A client's idempotency key: 1 to 64 characters of `[A-Za-z0-9_-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdemKey(String);

impl IdemKey {
    pub const MAX_LEN: usize = 64;

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdemKey {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(s))
        } else {
            Err(format!(
                "an idempotency key is 1 to {} characters of A-Z a-z 0-9 - _",
                Self::MAX_LEN
            ))
        }
    }
}

impl From<IdemKey> for String {
    fn from(k: IdemKey) -> String {
        k.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiCall {
    /// One change request per host matching `target`.
    Submit {
        spec: ChangeSpec,
        target: String,
    },
    /// One change, or the most recent ones.
    Status {
        change: Option<ChangeId>,
        limit: u32,
    },
    /// Several changes at once, each as `Status` of it would answer (all
    /// or a fault): one call follows every change of a submission, and
    /// one watch at the front door covers them all.
    StatusOf {
        changes: Vec<ChangeId>,
    },
    /// A host's queue: in flight first, then queued in FIFO order.
    Queue {
        host: HostId,
    },
    Cancel {
        change: ChangeId,
    },
    /// The operator declares an in-flight change's host lost: the change
    /// ends `abandoned`; `hold` keeps the host's queue from moving on until
    /// `HostRelease`.
    Abandon {
        change: ChangeId,
        hold: bool,
    },
    /// Submits a finished change's program again, to the same host, as a
    /// new change.
    Retry {
        change: ChangeId,
    },
    Audit {
        host: Option<HostId>,
        change: Option<ChangeId>,
        limit: u32,
        /// Boxed: most calls carry none, and every call is as big as its
        /// largest variant.
        filter: Box<AuditFilter>,
    },
    AuditVerify,
    HostAdd {
        host: HostId,
        labels: Labels,
    },
    Hosts,
    /// Sets and removes labels of a registered host (audited `labels_set`).
    HostLabel {
        host: HostId,
        set: Labels,
        remove: Vec<String>,
    },
    /// Forgets a host: refused while changes wait for it unless `force`
    /// (queued ones are cancelled, the one in flight abandoned); its agent
    /// keys are revoked.
    HostRemove {
        host: HostId,
        force: bool,
    },
    /// Lets a held queue move on.
    HostRelease {
        host: HostId,
    },
    /// Accepts again a key that was revoked for `host` (the operator's
    /// explicit choice, audited `key_readmitted`).
    KeyReadmit {
        host: HostId,
        public: String,
    },
    /// Unknown keys knocked at the majordomo's door (sent by the
    /// majordomo, a batch per interval, already rate-limited; recorded as
    /// pending within a bound, audited as one record).
    KeysPending {
        knocks: Vec<crate::access::Knock>,
        /// Knocks the door dropped by its rate limits since the last batch.
        dropped: u64,
    },
    /// Pre-authorises `public` as `host`'s agent key.
    KeyAdd {
        host: HostId,
        public: String,
    },
    /// Accepts a pending key as `host`'s agent key (the operator checks the
    /// key against the one the agent prints when it starts).
    KeyAccept {
        host: HostId,
        public: String,
    },
    /// Revokes `host`'s keys: the agent is cut off at once; its queue stays.
    KeyRevoke {
        host: HostId,
    },
    Keys,
    /// Adds an operator to the caller's tenant, with grants no wider than
    /// the caller's own. A name in use is a conflict.
    OperatorAdd {
        name: String,
        public: String,
        grants: Vec<crate::access::Grant>,
    },
    /// Gives an operator of the caller's tenant a new key: the old one
    /// stops getting in at once.
    OperatorRotateKey {
        name: String,
        public: String,
    },
    /// Revokes an operator of the caller's tenant: its key no longer gets in.
    OperatorRevoke {
        name: String,
    },
    /// Gives an operator of the caller's tenant one more grant in place
    /// (its key stays): no wider than the caller's own grants.
    OperatorGrant {
        name: String,
        grant: crate::access::Grant,
    },
    /// Takes one grant (exactly as held) from an operator of the caller's
    /// tenant in place: refused for an operator holding a grant the caller
    /// lacks, and for the last holder of `tenants.admin` or of a tenant's
    /// `operators.admin`.
    OperatorUngrant {
        name: String,
        grant: crate::access::Grant,
    },
    Operators,
    /// The deployer's inventory (`deploy.rs`).
    Deploy(crate::deploy::DeployCall),
    /// Servers, import sessions, IP pools, applications.
    Catalog(crate::catalog::CatalogCall),
    /// The latest host metrics of one host or every host in scope.
    HostMetrics {
        host: Option<HostId>,
    },
    /// A chunk of a host's logs, fetched from the host (answered when the
    /// host answers, or a timeout).
    Logs(crate::observe::LogsQuery),
    /// Every daemon of the tower with its state, as the launcher last said
    /// (the plugs of hosts the caller may read only).
    TowerStatus,
    /// A page of a list call (`Status` without a change, `Audit`, `Hosts`,
    /// `Keys`, `Operators`, `Queue`, `HostMetrics`, the deployer's list,
    /// the catalogs' lists): answered with [`ApiAnswer::Page`].
    Page {
        call: Box<ApiCall>,
        page: crate::page::PageAsk,
    },
    /// The web console's logins, sessions and API tokens.
    Web(crate::web::WebCall),
    /// An environment's deploy secrets (`secrets.rs`).
    Secrets(crate::secrets::SecretsCall),
}

impl ApiCall {
    /// Whether the call changes the tower's state (and so takes an
    /// idempotency key).
    pub fn mutates(&self) -> bool {
        if let ApiCall::Page { call, .. } = self {
            return call.mutates();
        }
        if let ApiCall::Catalog(c) = self {
            return c.mutates();
        }
        if let ApiCall::Deploy(d) = self {
            return d.mutates();
        }
        if let ApiCall::Web(w) = self {
            return w.mutates();
        }
        if let ApiCall::Secrets(c) = self {
            return c.mutates();
        }
        !matches!(
            self,
            ApiCall::Status { .. }
                | ApiCall::StatusOf { .. }
                | ApiCall::Queue { .. }
                | ApiCall::Audit { .. }
                | ApiCall::AuditVerify
                | ApiCall::Hosts
                | ApiCall::HostMetrics { .. }
                | ApiCall::Logs(_)
                | ApiCall::Keys
                | ApiCall::Operators
                | ApiCall::TowerStatus
        )
    }

    /// The permission a call needs at the front door; `None` for calls only
    /// the tower itself makes.
    pub fn verb(&self) -> Option<crate::access::Verb> {
        use crate::access::Verb;
        Some(match self {
            ApiCall::Submit { .. } | ApiCall::Retry { .. } => Verb::ChangesSubmit,
            ApiCall::Cancel { .. } | ApiCall::Abandon { .. } => Verb::ChangesCancel,
            ApiCall::Status { .. } | ApiCall::StatusOf { .. } | ApiCall::Queue { .. } => {
                Verb::ChangesRead
            }
            ApiCall::Audit { .. } | ApiCall::AuditVerify => Verb::AuditRead,
            // The tower's own daemons are no tenant's data; its plugs are
            // hosts, filtered like `Hosts`.
            ApiCall::Hosts | ApiCall::HostMetrics { .. } | ApiCall::TowerStatus => Verb::HostsRead,
            ApiCall::Logs(_) => Verb::LogsRead,
            ApiCall::HostAdd { .. }
            | ApiCall::HostLabel { .. }
            | ApiCall::HostRemove { .. }
            | ApiCall::HostRelease { .. }
            | ApiCall::KeyReadmit { .. }
            | ApiCall::KeyAdd { .. }
            | ApiCall::KeyAccept { .. }
            | ApiCall::KeyRevoke { .. }
            | ApiCall::Keys => Verb::HostsAdmin,
            ApiCall::OperatorAdd { .. }
            | ApiCall::OperatorRotateKey { .. }
            | ApiCall::OperatorRevoke { .. }
            | ApiCall::OperatorGrant { .. }
            | ApiCall::OperatorUngrant { .. }
            | ApiCall::Operators => Verb::OperatorsAdmin,
            ApiCall::KeysPending { .. } => return None,
            // Recording a deploy follows its changes: the same verb.
            ApiCall::Deploy(crate::deploy::DeployCall::Record { .. }) => Verb::ChangesSubmit,
            ApiCall::Deploy(
                crate::deploy::DeployCall::Start { .. }
                | crate::deploy::DeployCall::StartVersion { .. }
                | crate::deploy::DeployCall::Verb { .. }
                | crate::deploy::DeployCall::Command { .. },
            ) => Verb::Deploy,
            ApiCall::Deploy(crate::deploy::DeployCall::List)
            | ApiCall::Deploy(crate::deploy::DeployCall::Rollout { .. }) => Verb::ChangesRead,
            // The deploy daemon's: never through the front door.
            ApiCall::Deploy(crate::deploy::DeployCall::Rollouts)
            | ApiCall::Deploy(crate::deploy::DeployCall::Follow)
            | ApiCall::Deploy(crate::deploy::DeployCall::Progress { .. }) => return None,
            ApiCall::Catalog(c) => c.verb(),
            ApiCall::Page { call, .. } => return call.verb(),
            // An operator's own credentials need no grant (the door lets
            // `WebCall::own` through); the rest are the tower's.
            ApiCall::Web(_) => return None,
            // The deploy daemon's: never through the front door.
            ApiCall::Secrets(crate::secrets::SecretsCall::Versions { .. }) => return None,
            ApiCall::Secrets(_) => Verb::SecretsAdmin,
        })
    }

    /// A second verb whose grants count for this call too (the door
    /// merges both scopes): a deploy also goes with `changes.submit` over
    /// every host (the way before `deploy`), and whoever may deploy an
    /// environment reads its deployment and follows its deploys.
    pub fn also(&self) -> Option<crate::access::Verb> {
        use crate::access::Verb;
        use crate::deploy::DeployCall;
        match self {
            ApiCall::Deploy(
                DeployCall::Start { .. }
                | DeployCall::StartVersion { .. }
                | DeployCall::Verb { .. }
                | DeployCall::Command { .. },
            ) => Some(Verb::ChangesSubmit),
            ApiCall::Deploy(DeployCall::List | DeployCall::Rollout { .. }) => Some(Verb::Deploy),
            ApiCall::Page { call, .. } => call.also(),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiReply {
    pub id: u64,
    pub body: Result<ApiAnswer, ApiFault>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiAnswer {
    Submitted(Vec<ChangeView>),
    Changes(Vec<ChangeView>),
    Hosts(Vec<HostView>),
    Audit(Vec<AuditRecord>),
    AuditVerified {
        records: u64,
        head: String,
    },
    Keys(Vec<crate::access::KeyRecord>),
    Operators(Vec<crate::access::OperatorRecord>),
    Done,
    Deploy(crate::deploy::DeployAnswer),
    Catalog(crate::catalog::CatalogAnswer),
    HostMetrics(Vec<crate::observe::HostMetricsView>),
    Logs(crate::observe::LogsPage),
    TowerStatus(crate::lifecycle::TowerHealth),
    /// One page of a list, and what it leaves out.
    Page {
        answer: Box<ApiAnswer>,
        page: crate::page::PageInfo,
    },
    Web(crate::web::WebAnswer),
    Secrets(crate::secrets::SecretsAnswer),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct ApiFault {
    pub kind: ApiFaultKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApiFaultKind {
    Malformed,
    Invalid,
    NotFound,
    /// The request is valid but the change's state forbids it.
    Conflict,
    /// The audit chain is broken.
    Tampered,
    /// The operator lacks the permission (verb or host scope).
    Forbidden,
    Storage,
    /// The host could not be asked (offline, not answering in time).
    Unavailable,
}

impl ApiFault {
    pub fn new(kind: ApiFaultKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// One audit record: append-only, hash-chained (`hash` covers every other
/// field, `prev_hash` included), tenant on every record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub seq: u64,
    pub at_ms: u64,
    pub tenant: String,
    pub operator: String,
    pub host: HostId,
    pub change: ChangeId,
    pub step: Option<u32>,
    /// One word: submitted, cancelled, step_applied, step_failed,
    /// step_undone, undo_failed, finished, abandoned, retried, labels_set,
    /// host_registered, host_removed, host_held, host_released, key_*.
    pub action: String,
    pub summary: String,
    pub exit_code: Option<i32>,
    pub before_digest: Option<String>,
    pub after_digest: Option<String>,
    pub output_tail: String,
    pub prev_hash: String,
    pub hash: String,
    /// The record's number within its tenant, from 1 without gaps (`seq`
    /// numbers the whole tower's chain). 0 on records made before it.
    #[serde(default)]
    pub tenant_seq: u64,
}

/// Which audit records a call wants, besides host and change. `before` and
/// `after` are tenant numbers (`AuditRecord::tenant_seq`): page back from
/// the newest with `before`, forward from a point with `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditFilter {
    pub operator: Option<String>,
    /// Unix milliseconds, inclusive.
    pub since_ms: Option<u64>,
    /// Unix milliseconds, exclusive.
    pub until_ms: Option<u64>,
    pub before: Option<u64>,
    pub after: Option<u64>,
}

impl From<crate::web::WebCall> for ApiCall {
    fn from(w: crate::web::WebCall) -> Self {
        ApiCall::Web(w)
    }
}
