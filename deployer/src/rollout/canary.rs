//! The canary of a rolling update (issue 19): its first `canary` hosts
//! are deployed, then the rollout waits — its state recorded, so a
//! restart of the daemon or of the referee finds it waiting still — for
//! the operator's `continue` (the other hosts, wave by wave) or `abort`
//! (the canary hosts back to the previous version: its instance, kept on
//! disk, started and checked again, the proxy switched back in one
//! reload, the new replicas drained and stopped). While it waits the
//! inventory holds an in-progress entry saying what each host runs.
//!
//! A canary needs a previous version to go back to and a deploy that
//! serves throughout: a first deploy, or one with migrations pending (a
//! maintenance deploy, which stops every host), is refused.

use vigie_wire::change::ChangeSpec;

use super::{Command, Ended, Output, Phase, Rollout, State};
use crate::compile::{prelude, route_list, stop_placement, switch_steps};
use crate::maintenance::{routes_of, start_placements, MigrationCheck};
use crate::plan::{DeployPlan, HostPlan};
use crate::site_conf;
use crate::spec::{Environment, Role};

/// Why a canary deploy found migrations pending is refused.
pub(super) const MAINTENANCE_REFUSAL: &str =
    "migrations are pending: this deploy goes through maintenance on every host, which a canary cannot; \
     nothing was deployed: deploy without --canary";

/// Whether a rollout's recorded state (JSON) waits after its canary.
pub fn waiting(state: &[u8]) -> bool {
    serde_json::from_slice::<State>(state).is_ok_and(|s| matches!(s.phase, Phase::Wait(_)))
}

impl Rollout {
    /// How many of `busy` hosts make the canary.
    pub(super) fn canary_count(&self, busy: usize) -> usize {
        (self.state.options.canary as usize).min(busy)
    }

    /// Why this deploy cannot have a canary, if it asks for one.
    pub(super) fn canary_refusal(
        &self,
        first: bool,
        check: MigrationCheck,
        stuck: &[String],
    ) -> Option<String> {
        if self.state.options.canary == 0 {
            return None;
        }
        if first || check == MigrationCheck::FirstDeploy {
            return Some(format!(
                "{} has never been deployed: a canary needs a previous version to go back to; deploy without --canary",
                self.env.key
            ));
        }
        if !stuck.is_empty() || check == MigrationCheck::Pending {
            return Some(MAINTENANCE_REFUSAL.into());
        }
        None
    }

    /// Whether the wave `index` is the canary's last, with hosts after it.
    pub(super) fn canary_ends_at(&self, index: usize) -> bool {
        let waves = self.waves();
        let busy: usize = waves.iter().map(Vec::len).sum();
        let n = self.canary_count(busy);
        if n == 0 || n >= busy || index >= waves.len() {
            return false;
        }
        waves[..=index].iter().map(Vec::len).sum::<usize>() == n
    }

    /// The canary hosts: those of the waves before `next`.
    fn canary_hosts(&self, next: usize) -> Vec<String> {
        self.waves().into_iter().take(next).flatten().collect()
    }

    /// The canary deployed: recorded (in progress) and waiting.
    pub(super) fn wait(&mut self, next: usize) -> Vec<Output> {
        self.state.phase = Phase::Wait(next);
        self.state.sent.clear();
        let canary = self.canary_hosts(next);
        let others: usize = self.waves().iter().skip(next).map(Vec::len).sum();
        let key = &self.env.key;
        vec![
            self.record(false),
            Output::Say(format!(
                "canary: {} run{} the new version; waiting: `vigie deployments continue {key}` deploys the {others} other host(s), \
                 `vigie deployments abort {key}` takes {} back to the previous version",
                canary.join(", "),
                if canary.len() == 1 { "s" } else { "" },
                if canary.len() == 1 { "it" } else { "them" },
            )),
        ]
    }

    /// An operator's word: only a waiting rollout takes one.
    pub(super) fn command(&mut self, command: Command) -> Vec<Output> {
        let Phase::Wait(next) = self.state.phase else {
            return Vec::new();
        };
        match command {
            Command::Continue => {
                let mut out = vec![Output::Say("continue: deploying the other hosts".into())];
                out.extend(self.wave(next));
                out
            }
            Command::Abort => {
                let canary = self.canary_hosts(next);
                let mut out = vec![Output::Say(format!(
                    "abort: {} back to the previous version",
                    canary.join(", ")
                ))];
                out.extend(self.open(Phase::Abort, &canary));
                out
            }
        }
    }

    /// The canary hosts' way back ended: those that went back keep what
    /// they ran before this deploy; one whose way back rolled back still
    /// runs the new version, and the record says so.
    pub(super) fn aborted(&mut self, outcomes: &[(String, String, Ended)]) -> Vec<Output> {
        let mut out = Vec::new();
        for (host, change, ended) in outcomes {
            if ended.ok {
                self.state
                    .results
                    .insert(host.clone(), (change.clone(), false));
            } else {
                out.push(Output::Say(format!(
                    "{host}: could not go back (change {change} rolled back): it still runs the new version"
                )));
            }
        }
        out.push(Output::Say("canary aborted".into()));
        out.extend(self.settle());
        out
    }
}

/// A canary host back to what it ran before this deploy: the previous
/// instance of each service it rolled started and checked, the proxy
/// switched to it (one reload), then the new replicas drained and
/// stopped. Undo (a failed check) leaves the new version serving.
pub(super) fn compile_abort(env: &Environment, plan: &DeployPlan, host: &HostPlan) -> ChangeSpec {
    let new_of = |service: &crate::plan::ServicePlan| crate::inventory::Placement {
        instance: service.instance,
        replicas: service.spec.replicas,
        ports: service.ports.clone(),
    };
    let mut steps = prelude(env);
    // A worker has no proxy in front: the new one stops before the
    // previous one starts, as in a rolling update.
    let workers = host.services.iter().filter(|s| s.spec.role == Role::Worker);
    for service in workers {
        steps.extend(stop_placement(
            &env.key,
            &service.name,
            &new_of(service),
            &service.spec,
            0,
        ));
    }
    let previous: Vec<_> = host
        .services
        .iter()
        .filter_map(|s| s.previous.clone().map(|p| (s.name.clone(), p)))
        .collect();
    steps.extend(start_placements(env, host, &previous));
    let routes = routes_of(
        env,
        previous
            .iter()
            .map(|(n, p)| (n, p.ports.as_slice()))
            .chain(host.steady.iter().map(|(n, p)| (n, p.ports.as_slice()))),
    );
    steps.extend(switch_steps(
        env,
        &format!("abort-{}", plan.number),
        "the previous version (canary aborted)".into(),
        site_conf(
            &env.key,
            host.address,
            host.proxy_port,
            &route_list(env, &routes),
        ),
    ));
    let web = host.services.iter().filter(|s| s.spec.role == Role::Web);
    for service in web {
        let drain = service.spec.drain_ms;
        steps.extend(stop_placement(
            &env.key,
            &service.name,
            &new_of(service),
            &service.spec,
            drain,
        ));
    }
    ChangeSpec {
        title: format!(
            "deploy {} #{} on {}: canary aborted, back to the previous version",
            env.key, plan.number, host.host
        ),
        steps,
    }
}
