//! The rollout of one deploy as a state machine without I/O (issue 19):
//! the one place that decides what a deploy does next. Its inputs are
//! what the deploy daemon saw — the facts a plan is made from, a change
//! submitted or ended, the inventory written or refused — and its
//! outputs what the daemon must do: read the facts, submit a change
//! (each under an idempotency key of its own, so submitting it again
//! after a crash gets the same change), write the inventory, say a line
//! to the operator, end. Its [`State`] is plain data the daemon records
//! in the referee *before* it carries out the outputs of a step; a
//! rollout rebuilt from it ([`Rollout::resume`]) plans the same and asks
//! for what its current phase still lacks, so a crash of the daemon, the
//! referee or the operator's CLI at any point resumes the deploy — and
//! nothing decides anything from a stale inventory.
//!
//! The phases are the deployer's: a rolling update a wave of hosts at a
//! time, or — migrations pending — maintenance entered on every host,
//! the hosts upgraded one by one (migrations on the first), and on a
//! failure the hosts still in maintenance back to the previous version
//! only when the migrations cannot have committed (`recovery`).

mod canary;
mod failure;
mod machine;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{ChangeState, ChangeView};

use crate::inventory::EnvRecord;
use crate::maintenance::probe_answer;
use crate::plan::{DeployPlan, Target};
use crate::recovery::MigrateRun;
use crate::spec::Environment;

pub use canary::waiting;
pub use failure::{failure_lines, ERROR_LINES};
pub use machine::Rollout;
pub use vigie_wire::deploy::RolloutCommand as Command;

/// What the operator asked of the deploy beside its environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    /// Hosts of a rolling update updated at once.
    pub parallel: u32,
    /// Deploy although hosts were left in maintenance.
    pub from_maintenance: bool,
    /// Who started it, and when (ms since the epoch): the history says so.
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub started_ms: u64,
    /// The application catalog's version deployed (`None`: a file).
    #[serde(default)]
    pub version: Option<String>,
    /// Hosts deployed before the rollout waits for `continue` or `abort`
    /// (0: no canary).
    #[serde(default)]
    pub canary: u32,
}

/// What a deploy is planned from, read once by the daemon and kept in
/// the state: a resumed rollout plans the same deploy, never one from
/// an inventory its own first half already changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    /// The environment's record before this deploy.
    pub previous: Option<EnvRecord>,
    /// The hosts its selector matched.
    pub targets: Vec<Target>,
    /// The tenant's other environments (names and ports taken).
    pub others: Vec<EnvRecord>,
    /// The environment's secrets and their current versions (pinned into
    /// the plan: a rotation bumps the services that read them).
    #[serde(default)]
    pub secrets: std::collections::BTreeMap<String, u32>,
}

/// How a change of the current phase ended, as far as the rollout cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ended {
    pub ok: bool,
    /// Its migrations step (upgrades).
    pub migrate: MigrateRun,
    /// What a migrations check answered: `Some(true)` when pending.
    pub probe: Option<bool>,
}

impl Ended {
    /// Read from the change's final view.
    pub fn of(view: &ChangeView) -> Ended {
        Ended {
            ok: view.state == ChangeState::Succeeded,
            migrate: MigrateRun::of(view),
            probe: view
                .steps
                .last()
                .and_then(|s| s.result.as_ref())
                .and_then(|r| probe_answer(&r.stdout_tail)),
        }
    }
}

/// One change of the current phase: its host, the key it is submitted
/// under, and what is known of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub host: String,
    pub key: String,
    pub change: Option<String>,
    pub ended: Option<Ended>,
}

/// Marks the change submitted under `key` as refused by the tower, under
/// a made-up id that ends it like any change: that id and the line that
/// says so (`None`: no change waits under `key`). Deploys and verbs alike.
pub(crate) fn refuse(sent: &mut [Sent], key: &str, why: &str) -> Option<(String, Output)> {
    let sent = sent
        .iter_mut()
        .find(|s| s.key == key && s.change.is_none())?;
    let refused = format!("refused-{key}");
    sent.change = Some(refused.clone());
    let line = format!("{}: the tower refused its change: {why}", sent.host);
    Some((refused, Output::Say(line)))
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting for the facts.
    Plan,
    /// The first host asked whether migrations are pending.
    Probe,
    /// A wave of a rolling update (its index).
    Wave(usize),
    /// Every host entering maintenance.
    Enter,
    /// One host's upgrade in a maintenance deploy (its index).
    Upgrade(usize),
    /// Hosts going back to the previous version, maintenance off.
    Leave,
    /// The canary deployed: waiting for the operator, then the wave of
    /// this index.
    Wait(usize),
    /// The canary hosts going back to the previous version (aborted).
    Abort,
    /// The outcome being written to the inventory.
    Settle,
    Done(Finish),
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Phase::Plan => f.write_str("plan"),
            Phase::Probe => f.write_str("probe"),
            Phase::Wave(i) => write!(f, "wave {}", i + 1),
            Phase::Enter => f.write_str("enter"),
            Phase::Upgrade(i) => write!(f, "upgrade {}", i + 1),
            Phase::Leave => f.write_str("leave"),
            Phase::Wait(_) => f.write_str("waiting for continue or abort"),
            Phase::Abort => f.write_str("abort"),
            Phase::Settle => f.write_str("settle"),
            Phase::Done(end) => write!(f, "done: {}", end.word()),
        }
    }
}

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    Succeeded,
    /// A host rolled back: the hosts keep what they ran.
    RolledBack,
    /// Migrations committed and hosts were left in maintenance.
    InMaintenance,
    /// Nothing deployed: the plan or the inventory refused it.
    Failed,
    /// Refused before anything was touched (hosts in maintenance).
    Refused,
}

impl Finish {
    pub fn word(self) -> &'static str {
        match self {
            Finish::Succeeded => "succeeded",
            Finish::RolledBack => "rolled back",
            Finish::InMaintenance => "failed, hosts left in maintenance",
            Finish::Failed => "failed",
            Finish::Refused => "refused",
        }
    }
}

/// A rollout's whole state, recorded before each of its steps acts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// This rollout's id: its idempotency keys and its inventory entry's
    /// run are made from it.
    pub token: String,
    pub options: Options,
    pub facts: Option<Facts>,
    pub phase: Phase,
    /// The changes of the current phase.
    pub sent: Vec<Sent>,
    /// Each host's change and whether it succeeded (`settle`'s input).
    pub results: BTreeMap<String, (String, bool)>,
    /// The deploy went through maintenance.
    pub went: bool,
    /// An earlier deploy left the schema ahead of the old code.
    pub schema_ahead: bool,
    /// Hosts that may answer the maintenance page.
    pub in_maintenance: Vec<String>,
    /// Idempotency keys handed out so far.
    pub keys: u32,
}

/// What happened, for the rollout to take into account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Facts(Facts),
    /// A change was submitted under `key`.
    Submitted {
        key: String,
        change: String,
    },
    Ended {
        change: String,
        ended: Ended,
    },
    /// The tower refused the change submitted under `key` (its host
    /// removed, the program too large): as if it rolled back at once.
    SubmitRefused {
        key: String,
        why: String,
    },
    /// Why a change of the phase failed, in words (`failure_lines`: its
    /// failed step and its error's first lines), given before its
    /// `Ended` so the operator reads it live.
    Failed {
        change: String,
        lines: Vec<String>,
    },
    /// What an ended change's last step printed (a verb's `clean` lists
    /// what it removed there).
    Told {
        change: String,
        text: String,
    },
    /// The inventory took a record asked for (`done`: the final one).
    Recorded {
        done: bool,
    },
    /// The inventory refused it (another deploy wrote meanwhile).
    RecordRefused(String),
    /// An operator's word to a rollout waiting after its canary.
    Command(Command),
}

/// What the daemon must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Read the facts (hosts, inventory) and give them back.
    ReadFacts,
    Submit {
        host: String,
        key: String,
        spec: ChangeSpec,
    },
    /// Write the environment's record (`expected`: deploys in its
    /// history when planned; the referee's compare-and-set).
    Record {
        record: EnvRecord,
        expected: u32,
        /// The deploy's outcome (else an in-progress entry).
        done: bool,
    },
    /// A line for the operator.
    Say(String),
    Done(Finish),
}

/// The plan a state's facts give (the same every time).
pub fn replan(env: &Environment, facts: &Facts) -> Result<DeployPlan, crate::DeployError> {
    let env = env.pin_secrets(&facts.secrets)?;
    crate::plan::plan(&env, facts.previous.as_ref(), &facts.targets, &facts.others)
}

/// What a change of `sent` that is still open says of its failure: each
/// line after its host (nothing for a change not open in this phase).
pub(crate) fn say_failure(sent: &[Sent], change: &str, lines: &[String]) -> Vec<Output> {
    let Some(s) = sent
        .iter()
        .find(|s| s.change.as_deref() == Some(change) && s.ended.is_none())
    else {
        return Vec::new();
    };
    lines
        .iter()
        .map(|l| Output::Say(format!("{}: {l}", s.host)))
        .collect()
}
