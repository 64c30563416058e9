//! The tower's calls, typed: each is a type that names its answer's type
//! ([`Call::Answer`]) and turns into the wire's [`ApiCall`] (the model:
//! rust-analyzer's request types, `type Params; type Result;`). The
//! client hands back that type or an error, so no caller sorts out an
//! answer meant for another call.

use vigie_wire::access::{Grant, KeyRecord, Knock, OperatorRecord};
use vigie_wire::change::ChangeSpec;
use vigie_wire::deploy::{
    DeployAnswer, DeployCall, Deployment, EnvVerb, Rollout, RolloutCommand, RolloutEnd,
};
use vigie_wire::lifecycle::TowerHealth;
use vigie_wire::observe::{HostMetricsView, LogsPage, LogsQuery};
use vigie_wire::page::{PageAsk, PageInfo};
use vigie_wire::tower::{
    ApiAnswer, ApiCall, AuditFilter, AuditRecord, ChangeId, ChangeView, HostId, HostView, Labels,
};

/// A call of the tower's API that names the type of its answer.
pub trait Call: Into<ApiCall> {
    /// What the tower answers this call with.
    type Answer;
    /// This call's answer out of the wire's, or the wire's back when it
    /// is another call's.
    fn answer(answer: ApiAnswer) -> Result<Self::Answer, Box<ApiAnswer>>;
}

/// A call type with named fields (or none) for an `ApiCall` variant of the
/// same fields, answered by what `$pat` matches.
macro_rules! call {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $f:ident: $t:ty),* $(,)? }
        => $make:expr, $answer:ty, $pat:pat => $out:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name {
            $($(#[$fdoc])* pub $f: $t),*
        }
        impl From<$name> for ApiCall {
            fn from(c: $name) -> ApiCall {
                let $name { $($f),* } = c;
                $make
            }
        }
        impl Call for $name {
            type Answer = $answer;
            fn answer(a: ApiAnswer) -> Result<$answer, Box<ApiAnswer>> {
                match a {
                    $pat => Ok($out),
                    other => Err(Box::new(other)),
                }
            }
        }
    };
    ($(#[$doc:meta])* $name:ident => $make:expr, $answer:ty, $pat:pat => $out:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;
        impl From<$name> for ApiCall {
            fn from(_: $name) -> ApiCall {
                $make
            }
        }
        impl Call for $name {
            type Answer = $answer;
            fn answer(a: ApiAnswer) -> Result<$answer, Box<ApiAnswer>> {
                match a {
                    $pat => Ok($out),
                    other => Err(Box::new(other)),
                }
            }
        }
    };
}

call!(
    /// One change request per host matching `target`: the changes queued.
    Submit { spec: ChangeSpec, target: String }
        => ApiCall::Submit { spec, target }, Vec<ChangeView>, ApiAnswer::Submitted(v) => v
);
call!(
    /// One change, or the most recent ones.
    Status { change: Option<ChangeId>, limit: u32 }
        => ApiCall::Status { change, limit }, Vec<ChangeView>, ApiAnswer::Changes(v) => v
);
call!(
    /// A host's queue: in flight first, then queued in FIFO order.
    Queue { host: HostId }
        => ApiCall::Queue { host }, Vec<ChangeView>, ApiAnswer::Changes(v) => v
);
call!(
    /// Cancels a queued change: the change as it ends.
    Cancel { change: ChangeId }
        => ApiCall::Cancel { change }, Vec<ChangeView>, ApiAnswer::Changes(v) => v
);
call!(
    /// Declares an in-flight change's host lost: the change as it ends.
    Abandon { change: ChangeId, hold: bool }
        => ApiCall::Abandon { change, hold }, Vec<ChangeView>, ApiAnswer::Changes(v) => v
);
call!(
    /// A finished change's program again, as a new change.
    Retry { change: ChangeId }
        => ApiCall::Retry { change }, Vec<ChangeView>, ApiAnswer::Submitted(v) => v
);
call!(
    /// Audit records, newest last.
    Audit { host: Option<HostId>, change: Option<ChangeId>, limit: u32, filter: Box<AuditFilter> }
        => ApiCall::Audit { host, change, limit, filter },
        Vec<AuditRecord>, ApiAnswer::Audit(v) => v
);
call!(
    /// Checks the whole audit chain.
    AuditVerify => ApiCall::AuditVerify, Verified,
        ApiAnswer::AuditVerified { records, head } => Verified { records, head }
);
call!(Hosts => ApiCall::Hosts, Vec<HostView>, ApiAnswer::Hosts(v) => v);
call!(Keys => ApiCall::Keys, Vec<KeyRecord>, ApiAnswer::Keys(v) => v);
call!(Operators => ApiCall::Operators, Vec<OperatorRecord>, ApiAnswer::Operators(v) => v);
call!(
    /// Every daemon of the tower with its state.
    TowerStatus => ApiCall::TowerStatus, TowerHealth, ApiAnswer::TowerStatus(h) => h
);
call!(
    /// The latest metrics of one host or every host in scope.
    HostMetrics { host: Option<HostId> }
        => ApiCall::HostMetrics { host }, Vec<HostMetricsView>, ApiAnswer::HostMetrics(v) => v
);
call!(
    /// Registers a host.
    HostAdd { host: HostId, labels: Labels }
        => ApiCall::HostAdd { host, labels }, (), ApiAnswer::Done => ()
);
call!(
    /// Sets and removes a host's labels.
    HostLabel { host: HostId, set: Labels, remove: Vec<String> }
        => ApiCall::HostLabel { host, set, remove }, (), ApiAnswer::Done => ()
);
call!(
    /// Forgets a host (`force`: even with changes waiting for it).
    HostRemove { host: HostId, force: bool }
        => ApiCall::HostRemove { host, force }, (), ApiAnswer::Done => ()
);
call!(
    /// Lets a held queue move on.
    HostRelease { host: HostId } => ApiCall::HostRelease { host }, (), ApiAnswer::Done => ()
);
call!(
    /// Accepts again a key revoked for `host`.
    KeyReadmit { host: HostId, public: String }
        => ApiCall::KeyReadmit { host, public }, (), ApiAnswer::Done => ()
);
call!(
    /// The unknown keys that knocked (the majordomo's).
    KeysPending { knocks: Vec<Knock>, dropped: u64 }
        => ApiCall::KeysPending { knocks, dropped }, (), ApiAnswer::Done => ()
);
call!(
    /// Pre-authorises `public` as `host`'s agent key.
    KeyAdd { host: HostId, public: String }
        => ApiCall::KeyAdd { host, public }, (), ApiAnswer::Done => ()
);
call!(
    /// Accepts a pending key as `host`'s agent key.
    KeyAccept { host: HostId, public: String }
        => ApiCall::KeyAccept { host, public }, (), ApiAnswer::Done => ()
);
call!(
    /// Revokes `host`'s keys.
    KeyRevoke { host: HostId } => ApiCall::KeyRevoke { host }, (), ApiAnswer::Done => ()
);
call!(
    /// Adds an operator to the caller's tenant.
    OperatorAdd { name: String, public: String, grants: Vec<Grant> }
        => ApiCall::OperatorAdd { name, public, grants }, (), ApiAnswer::Done => ()
);
call!(
    /// Gives an operator a new key.
    OperatorRotateKey { name: String, public: String }
        => ApiCall::OperatorRotateKey { name, public }, (), ApiAnswer::Done => ()
);
call!(
    /// Revokes an operator.
    OperatorRevoke { name: String } => ApiCall::OperatorRevoke { name }, (), ApiAnswer::Done => ()
);
call!(
    /// Gives an operator one more grant.
    OperatorGrant { name: String, grant: Grant }
        => ApiCall::OperatorGrant { name, grant }, (), ApiAnswer::Done => ()
);
call!(
    /// Takes one grant from an operator.
    OperatorUngrant { name: String, grant: Grant }
        => ApiCall::OperatorUngrant { name, grant }, (), ApiAnswer::Done => ()
);
call!(
    /// A chunk of a host's logs.
    Logs { query: LogsQuery } => ApiCall::Logs(query), LogsPage, ApiAnswer::Logs(p) => p
);
call!(
    /// Every environment of the caller's tenant the deployer knows.
    DeployList => ApiCall::Deploy(DeployCall::List), Vec<Deployment>,
        ApiAnswer::Deploy(DeployAnswer::Deployments(v)) => v
);
call!(
    /// Stores an environment's record (`expected`: its history's length
    /// when the deploy was planned).
    DeployRecord { app: String, environment: String, expected: u32, record: Vec<u8> }
        => ApiCall::Deploy(DeployCall::Record { app, environment, expected, record }),
        (), ApiAnswer::Deploy(DeployAnswer::Recorded) => ()
);
call!(
    /// Starts a deploy the tower runs: its rollout's id (refused while
    /// another deploy of the environment runs, unless `force_unlock`).
    DeployStart { file: String, text: String, parallel: u32, from_maintenance: bool, force_unlock: bool, canary: u32 }
        => ApiCall::Deploy(DeployCall::Start { file, text, parallel, from_maintenance, force_unlock, canary }),
        String, ApiAnswer::Deploy(DeployAnswer::Started { id }) => id
);
call!(
    /// Starts a deploy of the environment the catalog's `version` of
    /// `app` holds (the referee takes its text from the catalog).
    DeployStartVersion {
        app: String, environment: String, version: String,
        parallel: u32, from_maintenance: bool, force_unlock: bool,
    } => ApiCall::Deploy(DeployCall::StartVersion {
        app, environment, version, parallel, from_maintenance, force_unlock,
    }),
        String, ApiAnswer::Deploy(DeployAnswer::Started { id }) => id
);
call!(
    /// Runs a verb on a deployed environment in the tower (`undeploy`,
    /// `rollback`...): its rollout's id, under the deploy's lock.
    DeployVerb { app: String, environment: String, verb: EnvVerb, force_unlock: bool }
        => ApiCall::Deploy(DeployCall::Verb { app, environment, verb, force_unlock }),
        String, ApiAnswer::Deploy(DeployAnswer::Started { id }) => id
);
call!(
    /// Tells a rollout waiting after its canary to go on or to abort.
    DeployCommand { app: String, environment: String, command: RolloutCommand }
        => ApiCall::Deploy(DeployCall::Command { app, environment, command }),
        (), ApiAnswer::Deploy(DeployAnswer::Recorded) => ()
);
call!(
    /// An environment's current or last rollout (its lines).
    DeployRollout { app: String, environment: String }
        => ApiCall::Deploy(DeployCall::Rollout { app, environment }),
        Option<Box<Rollout>>, ApiAnswer::Deploy(DeployAnswer::Rollout(r)) => r
);
call!(
    /// The deploy daemon's: every rollout not ended, every tenant's.
    DeployRollouts => ApiCall::Deploy(DeployCall::Rollouts), Vec<Rollout>,
        ApiAnswer::Deploy(DeployAnswer::Rollouts(v)) => v
);
call!(
    /// The deploy daemon's: a rollout's state, new lines and end.
    DeployProgress {
        tenant: String, app: String, environment: String, id: String,
        state: Vec<u8>, said_before: u64, lines: Vec<String>, end: Option<RolloutEnd>
    }
        => ApiCall::Deploy(DeployCall::Progress {
            tenant, app, environment, id, state, said_before, lines, end
        }),
        (), ApiAnswer::Deploy(DeployAnswer::Recorded) => ()
);

/// The audit chain checked: the caller's tenant's records, the head hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub records: u64,
    pub head: String,
}

/// One page of a list call: its own answer, and what the page leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<C> {
    pub call: C,
    pub page: PageAsk,
}

impl<C: Call> From<Paged<C>> for ApiCall {
    fn from(p: Paged<C>) -> ApiCall {
        ApiCall::Page {
            call: Box::new(p.call.into()),
            page: p.page,
        }
    }
}

impl<C: Call> Call for Paged<C> {
    type Answer = (C::Answer, PageInfo);
    fn answer(a: ApiAnswer) -> Result<Self::Answer, Box<ApiAnswer>> {
        match a {
            ApiAnswer::Page { answer, page } => match C::answer(*answer) {
                Ok(inner) => Ok((inner, page)),
                Err(other) => Err(Box::new(ApiAnswer::Page {
                    answer: other,
                    page,
                })),
            },
            other => Err(Box::new(other)),
        }
    }
}

pub mod catalog;
mod web;

#[cfg(test)]
mod tests;
