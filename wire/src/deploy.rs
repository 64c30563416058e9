//! The deployer's calls to the referee: the referee is the single writer
//! of tower state, so the deployer's inventory (per tenant and
//! environment: instance numbers, placements, history) is read and
//! written through it, audited like everything else. The record itself is
//! the deployer's (`vigie_deployer::EnvRecord`, JSON): the wire carries it
//! as bytes and the referee checks it before storing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeployCall {
    /// Every environment of the caller's tenant the deployer knows.
    List,
    /// Stores an environment's record once its deploy settled, or while
    /// a maintenance deploy runs (an in-progress entry only its own run
    /// rewrites). `expected` is the number of deploys in its history when
    /// the deploy was planned: a record that moved since (another deploy
    /// of the same environment) is a conflict, never overwritten.
    Record {
        app: String,
        environment: String,
        expected: u32,
        #[serde(with = "serde_bytes")]
        record: Vec<u8>,
    },
    /// Starts a deploy in the tower: the deploy daemon runs it; refused
    /// while another deploy of the environment runs (naming who and since
    /// when), unless `force_unlock` (audited) for a tower that lost track.
    Start {
        /// The environment file's name, for messages.
        file: String,
        /// Its text (`environment.yml`), checked again by the referee.
        text: String,
        parallel: u32,
        from_maintenance: bool,
        force_unlock: bool,
        /// Hosts deployed first, then the rollout waits for a
        /// [`DeployCall::Command`] (0: no canary).
        #[serde(default)]
        canary: u32,
    },
    /// An operator's word to a rollout waiting after its canary: go on,
    /// or take the canary hosts back (audited; refused unless waiting).
    Command {
        app: String,
        environment: String,
        command: RolloutCommand,
    },
    /// Starts a deploy of the environment the application catalog's
    /// `version` holds (`vigie deploy APP/ENV --version V`): like `Start`,
    /// its text taken by the referee from the catalog, never the caller.
    StartVersion {
        app: String,
        environment: String,
        version: String,
        parallel: u32,
        from_maintenance: bool,
        force_unlock: bool,
    },
    /// Runs a verb on a deployed environment in the tower (`undeploy`,
    /// `stop`, `rollback`...): the deploy daemon carries it out like a
    /// deploy, under the same lock (refused while a deploy or another
    /// verb of the environment runs, unless `force_unlock`).
    Verb {
        app: String,
        environment: String,
        verb: EnvVerb,
        force_unlock: bool,
    },
    /// The environment's current or last rollout (`watch`).
    Rollout { app: String, environment: String },
    /// The tower's deploy daemon only: every rollout not ended.
    Rollouts,
    /// The tower's deploy daemon only: starts a deploy of every
    /// environment saying `follow: true` that a host joined (online, its
    /// selector matching, not in the inventory yet); answers them.
    Follow,
    /// The tower's deploy daemon only: a rollout's state recorded before
    /// it acts, its new lines, and its end. Refused unless the rollout is
    /// `id` and not ended (a force-unlocked rollout's daemon stops).
    Progress {
        tenant: String,
        app: String,
        environment: String,
        id: String,
        #[serde(with = "serde_bytes")]
        state: Vec<u8>,
        /// Lines said before these: lines already recorded (a call
        /// retried after a lost answer) are not recorded twice.
        said_before: u64,
        lines: Vec<String>,
        end: Option<RolloutEnd>,
    },
}

impl DeployCall {
    pub fn mutates(&self) -> bool {
        matches!(
            self,
            DeployCall::Record { .. }
                | DeployCall::Start { .. }
                | DeployCall::StartVersion { .. }
                | DeployCall::Follow
                | DeployCall::Verb { .. }
                | DeployCall::Progress { .. }
                | DeployCall::Command { .. }
        )
    }
}

/// What an operator asks of a deployed environment beside a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvVerb {
    /// Services, proxy site and instance directories removed; databases
    /// only with `drop_data`: the environment's name (`app/env`) typed
    /// again by the operator, checked by the referee.
    Undeploy {
        drop_data: Option<String>,
    },
    /// Every service's replicas, or one service's.
    Stop {
        service: Option<String>,
    },
    Start {
        service: Option<String>,
    },
    /// Replica by replica, each out of the proxy while it restarts.
    Restart {
        service: Option<String>,
    },
    /// Back to the previous instance kept on disk (no fetch).
    Rollback,
    /// The maintenance page by hand (`on`), or the replicas again.
    Maintenance {
        on: bool,
    },
    /// What the inventory does not own removed (`dry_run`: listed).
    Clean {
        dry_run: bool,
    },
    /// A secret set again (`vigie secrets set`): the replicas that read
    /// it restarted in place, one at a time, with its new value (no
    /// fetch; stopped services stay stopped and read it when started).
    Rotate {
        secret: String,
    },
}

impl EnvVerb {
    /// The verb's name, as the CLI spells it.
    pub fn word(&self) -> &'static str {
        match self {
            EnvVerb::Undeploy { .. } => "undeploy",
            EnvVerb::Stop { .. } => "stop",
            EnvVerb::Start { .. } => "start",
            EnvVerb::Restart { .. } => "restart",
            EnvVerb::Rollback => "rollback",
            EnvVerb::Maintenance { on: true } => "maintenance on",
            EnvVerb::Maintenance { on: false } => "maintenance off",
            EnvVerb::Clean { dry_run: true } => "clean --dry-run",
            EnvVerb::Clean { dry_run: false } => "clean",
            EnvVerb::Rotate { .. } => "rotate",
        }
    }

    /// Whether it changes hosts (a dry run only reads).
    pub fn changes_hosts(&self) -> bool {
        !matches!(self, EnvVerb::Clean { dry_run: true })
    }
}

/// What an operator tells a rollout that waits after its canary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutCommand {
    /// Deploy the remaining hosts.
    Continue,
    /// Take the canary hosts back to the previous version.
    Abort,
}

impl RolloutCommand {
    pub fn word(self) -> &'static str {
        match self {
            RolloutCommand::Continue => "continue",
            RolloutCommand::Abort => "abort",
        }
    }
}

/// How a rollout ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutEnd {
    Succeeded,
    RolledBack,
    InMaintenance,
    Failed,
    Refused,
    /// An operator's `--force-unlock` took the environment from it.
    Unlocked,
}

impl RolloutEnd {
    pub fn word(self) -> &'static str {
        match self {
            RolloutEnd::Succeeded => "succeeded",
            RolloutEnd::RolledBack => "rolled back",
            RolloutEnd::InMaintenance => "failed, hosts left in maintenance",
            RolloutEnd::Failed => "failed",
            RolloutEnd::Refused => "refused",
            RolloutEnd::Unlocked => "unlocked by an operator",
        }
    }
}

/// One line a rollout said, with when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RolloutLine {
    pub at_ms: u64,
    pub text: String,
}

/// A deploy run by the tower: the environment's lock while `end` is
/// `None`, what its operator follows, and the daemon's recorded state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rollout {
    pub id: String,
    pub tenant: String,
    pub app: String,
    pub environment: String,
    /// Who started it.
    pub operator: String,
    pub started_ms: u64,
    pub file: String,
    pub text: String,
    pub parallel: u32,
    pub from_maintenance: bool,
    /// Hosts deployed before the rollout waits (0: no canary).
    #[serde(default)]
    pub canary: u32,
    /// Waiting after its canary for `continue` or `abort` (the referee
    /// reads it from the daemon's state).
    #[serde(default)]
    pub waiting: bool,
    /// What an operator told it while it waited, and who.
    #[serde(default)]
    pub command: Option<(RolloutCommand, String)>,
    /// The deploy daemon's state (`vigie_deployer::rollout::State`, JSON);
    /// empty until it took the rollout, and in answers to operators.
    #[serde(with = "serde_bytes")]
    pub state: Vec<u8>,
    /// The lines said so far (the last `MAX_LINES`).
    pub lines: Vec<RolloutLine>,
    /// Lines said in all (a follower knows what it missed).
    pub said: u64,
    pub end: Option<RolloutEnd>,
    pub ended_ms: Option<u64>,
    /// Who force-unlocked it.
    pub unlocked_by: Option<String>,
    /// The application catalog's version it deploys (`None`: a file).
    #[serde(default)]
    pub version: Option<String>,
    /// A verb run on the deployed environment (`file`/`text`: its last
    /// deploy's environment), rather than a deploy.
    #[serde(default)]
    pub verb: Option<EnvVerb>,
}

impl Rollout {
    /// Lines kept per rollout (older ones are dropped; `said` counts all).
    pub const MAX_LINES: usize = 1_000;
}

/// One environment's record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub app: String,
    pub environment: String,
    #[serde(with = "serde_bytes")]
    pub record: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeployAnswer {
    Deployments(Vec<Deployment>),
    Recorded,
    /// A deploy was started: its rollout's id.
    Started {
        id: String,
    },
    Rollout(Option<Box<Rollout>>),
    Rollouts(Vec<Rollout>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::front::Verb;
    use crate::tower::ApiCall;

    /// The deploy daemon's calls have no verb: the front door refuses them
    /// to every operator, whatever their grants (the referee refuses them
    /// to an operator's caller too).
    #[test]
    fn only_the_tower_lists_rollouts_or_records_their_progress() {
        let daemon = [
            DeployCall::Rollouts,
            DeployCall::Follow,
            DeployCall::Progress {
                tenant: "acme".into(),
                app: "shop".into(),
                environment: "prod".into(),
                id: "d1".into(),
                state: Vec::new(),
                said_before: 0,
                lines: Vec::new(),
                end: Some(RolloutEnd::Succeeded),
            },
        ];
        for call in daemon {
            assert_eq!(ApiCall::Deploy(call).verb(), None);
        }
        let start = DeployCall::Start {
            file: "e.yml".into(),
            text: String::new(),
            parallel: 1,
            from_maintenance: false,
            force_unlock: true,
            canary: 0,
        };
        assert!(start.mutates());
        assert_eq!(ApiCall::Deploy(start).verb(), Some(Verb::Deploy));
        let verb = DeployCall::Verb {
            app: "shop".into(),
            environment: "prod".into(),
            verb: EnvVerb::Undeploy { drop_data: None },
            force_unlock: false,
        };
        assert!(verb.mutates());
        assert_eq!(ApiCall::Deploy(verb).verb(), Some(Verb::Deploy));
        let watch = DeployCall::Rollout {
            app: "shop".into(),
            environment: "prod".into(),
        };
        assert_eq!(ApiCall::Deploy(watch).verb(), Some(Verb::ChangesRead));
    }
}
