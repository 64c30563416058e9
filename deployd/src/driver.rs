//! One rollout carried out: the machine's outputs done in order, each
//! input it gets back recorded in the referee (`Progress`: its state and
//! the lines it said) before any output that input produced is carried
//! out. Whatever stops the daemon, the referee or the operator's CLI,
//! the rollout is rebuilt from that record and asks again for what its
//! phase lacks — the same changes under the same idempotency keys, so
//! nothing is sent twice and nothing is planned again.

use std::collections::VecDeque;

use tracing::{info, warn};
use vigie_client::ApiClient;
use vigie_deployer::rollout::{Ended, Facts, Finish, Input, Options, Output, State};
use vigie_deployer::{parse_environment, EnvRecord, Machine, Rollout, Target};
use vigie_wire::deploy::{DeployAnswer, DeployCall, Rollout as Stored, RolloutEnd};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind, Caller, IdemKey};

use crate::error::DeploydError;

/// What a driver is left with after a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// More to do later.
    Going,
    /// Ended and recorded, or taken over (unlocked): drop it.
    Gone,
}

pub struct Driver {
    tenant: String,
    app: String,
    environment: String,
    id: String,
    machine: Option<Machine>,
    client: ApiClient,
    /// Outputs not carried out yet, in order.
    pending: VecDeque<Output>,
    /// Lines said since the last record.
    lines: Vec<String>,
    /// Lines the referee has recorded.
    said: u64,
    /// The state changed since it was last recorded.
    dirty: bool,
    end: Option<RolloutEnd>,
}

fn end_of(finish: Finish) -> RolloutEnd {
    match finish {
        Finish::Succeeded => RolloutEnd::Succeeded,
        Finish::RolledBack => RolloutEnd::RolledBack,
        Finish::InMaintenance => RolloutEnd::InMaintenance,
        Finish::Failed => RolloutEnd::Failed,
        Finish::Refused => RolloutEnd::Refused,
    }
}

impl Driver {
    /// Takes a stored rollout over: a new one starts, one with a state
    /// resumes where it was recorded.
    pub fn take(stored: &Stored, client: ApiClient) -> Driver {
        let mut d = Driver {
            tenant: stored.tenant.clone(),
            app: stored.app.clone(),
            environment: stored.environment.clone(),
            id: stored.id.clone(),
            machine: None,
            client,
            pending: VecDeque::new(),
            lines: Vec::new(),
            said: stored.said,
            dirty: true,
            end: None,
        };
        match build(stored) {
            Ok(mut machine) => {
                let phase = machine.phase();
                if stored.state.is_empty() {
                    info!(event = "rollout_started", rollout = %d.id, tenant = %d.tenant,
                        app = %d.app, environment = %d.environment, phase = %phase);
                } else {
                    info!(event = "rollout_resumed", rollout = %d.id, tenant = %d.tenant,
                        app = %d.app, environment = %d.environment, phase = %phase);
                }
                d.pending.extend(machine.start());
                // Ended, its end not recorded yet (cut right after).
                d.end = machine.finished().map(end_of);
                d.machine = Some(machine);
            }
            Err(e) => {
                d.lines.push(format!("this deploy cannot run: {e}"));
                d.end = Some(RolloutEnd::Failed);
            }
        }
        d
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// An operator's word found in the stored rollout: the machine takes
    /// it while it waits after its canary (and ignores it otherwise, so a
    /// word read again at every poll is carried out once).
    pub fn command(&mut self, stored: &Stored) {
        let Some((command, by)) = &stored.command else {
            return;
        };
        let waits = self.machine.as_ref().is_some_and(|m| m.waits_for_a_word());
        if waits && self.end.is_none() {
            info!(event = "rollout_commanded", rollout = %self.id, command = command.word(), by = %by);
            self.feed(Input::Command(*command));
        }
    }

    /// Records, carries out what it can, follows the open changes.
    pub fn tick(&mut self) -> Tick {
        loop {
            if self.dirty {
                match self.record() {
                    Ok(()) => {}
                    Err(e) if e.refusal().is_some() => {
                        warn!(event = "rollout_dropped", rollout = %self.id, error = %e);
                        return Tick::Gone;
                    }
                    Err(e) => {
                        warn!(event = "rollout_record_failed", rollout = %self.id, error = %e);
                        return Tick::Going;
                    }
                }
            }
            if self.end.is_some() {
                info!(event = "rollout_ended", rollout = %self.id, app = %self.app,
                    environment = %self.environment, end = self.end.map_or("", RolloutEnd::word));
                return Tick::Gone;
            }
            let Some(output) = self.pending.pop_front() else {
                break;
            };
            match self.carry_out(&output) {
                Ok(Some(input)) => self.feed(input),
                Ok(None) => {}
                // Asked again, it would fail again: the rollout ends here,
                // saying why (a submission refused is the machine's input).
                Err(e) if e.permanent() => {
                    warn!(event = "rollout_failed", rollout = %self.id, error = %e);
                    self.lines.push(format!("this deploy cannot go on: {e}"));
                    self.end = Some(RolloutEnd::Failed);
                    self.dirty = true;
                }
                Err(e) => {
                    warn!(event = "rollout_output_failed", rollout = %self.id, error = %e);
                    self.pending.push_front(output);
                    return Tick::Going;
                }
            }
        }
        if let Err(e) = self.follow() {
            warn!(event = "rollout_follow_failed", rollout = %self.id, error = %e);
        }
        Tick::Going
    }

    fn feed(&mut self, input: Input) {
        let Some(machine) = self.machine.as_mut() else {
            return;
        };
        let out = machine.step(input);
        self.dirty = true;
        // What the machine asks now comes before what it asked earlier
        // and is not done yet (both are its current phase's).
        for o in out.into_iter().rev() {
            self.pending.push_front(o);
        }
    }

    /// The rollout's state and new lines in the referee.
    fn record(&mut self) -> Result<(), DeploydError> {
        let state = match &self.machine {
            Some(m) => m
                .state_json()
                .map_err(|e| DeploydError::State(e.to_string()))?,
            None => Vec::new(),
        };
        let call = ApiCall::Deploy(DeployCall::Progress {
            tenant: self.tenant.clone(),
            app: self.app.clone(),
            environment: self.environment.clone(),
            id: self.id.clone(),
            state,
            said_before: self.said,
            lines: self.lines.clone(),
            end: self.end,
        });
        self.client.call(call)?;
        self.said += self.lines.len() as u64;
        self.lines.clear();
        self.dirty = false;
        if let Some(m) = &self.machine {
            info!(event = "rollout_recorded", rollout = %self.id, app = %self.app,
                environment = %self.environment, phase = %m.phase(),
                open = m.open_changes().len());
        }
        Ok(())
    }

    /// Carries out one output; what came of it, as the machine's input.
    fn carry_out(&mut self, output: &Output) -> Result<Option<Input>, DeploydError> {
        match output {
            Output::ReadFacts => Ok(Some(Input::Facts(self.facts()?))),
            Output::Submit { host, key, spec } => {
                let key = IdemKey::try_from(key.clone()).map_err(DeploydError::State)?;
                let call = ApiCall::Submit {
                    spec: spec.clone(),
                    target: host.clone(),
                };
                let answer = match self.client.call_idempotent(call, &key) {
                    Ok(answer) => answer,
                    Err(e) => {
                        let e = DeploydError::from(e);
                        return match e.refusal() {
                            Some(f) => Ok(Some(Input::SubmitRefused {
                                key: key.as_str().to_owned(),
                                why: f.message.clone(),
                            })),
                            None => Err(e),
                        };
                    }
                };
                let (ApiAnswer::Submitted(views) | ApiAnswer::Changes(views)) = answer else {
                    return Err(DeploydError::Unexpected(format!("{answer:?}")));
                };
                let change = views
                    .first()
                    .map(|v| v.id.clone())
                    .ok_or_else(|| DeploydError::Unexpected("no change submitted".into()))?;
                Ok(Some(Input::Submitted {
                    key: key.as_str().to_owned(),
                    change,
                }))
            }
            Output::Record {
                record,
                expected,
                done,
            } => self.write(record, *expected, *done).map(Some),
            Output::Say(line) => {
                info!(event = "rollout_said", rollout = %self.id, line = %line);
                self.lines.push(line.clone());
                self.dirty = true;
                Ok(None)
            }
            Output::Done(finish) => {
                self.end = Some(end_of(*finish));
                self.dirty = true;
                Ok(None)
            }
        }
    }

    /// The inventory written; a conflict with what this very rollout
    /// already wrote (a crash after the write) is the write done.
    fn write(
        &mut self,
        record: &EnvRecord,
        expected: u32,
        done: bool,
    ) -> Result<Input, DeploydError> {
        let bytes = record
            .to_json()
            .map_err(|e| DeploydError::State(e.to_string()))?;
        let call = ApiCall::Deploy(DeployCall::Record {
            app: self.app.clone(),
            environment: self.environment.clone(),
            expected,
            record: bytes,
        });
        match self.client.call(call) {
            Ok(_) => Ok(Input::Recorded { done }),
            Err(vigie_client::ClientError::Refused(f)) if f.kind == ApiFaultKind::Conflict => {
                let stored = self.inventory()?.into_iter().find(|r| r.key == record.key);
                if stored.as_ref() == Some(record) {
                    Ok(Input::Recorded { done })
                } else {
                    Ok(Input::RecordRefused(f.message))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    fn inventory(&mut self) -> Result<Vec<EnvRecord>, DeploydError> {
        match self.client.call(ApiCall::Deploy(DeployCall::List))? {
            ApiAnswer::Deploy(DeployAnswer::Deployments(all)) => all
                .iter()
                .map(|d| {
                    EnvRecord::from_json(&d.record).map_err(|e| DeploydError::State(e.to_string()))
                })
                .collect(),
            other => Err(DeploydError::Unexpected(format!("{other:?}"))),
        }
    }

    /// The hosts the environment's selector matches and the inventory.
    fn facts(&mut self) -> Result<Facts, DeploydError> {
        let Some(machine) = &self.machine else {
            return Err(DeploydError::State("no rollout".into()));
        };
        let key = machine_key(machine);
        let env = machine.env().clone();
        let selector = vigie_changes::Selector::parse(&machine_hosts(machine))
            .map_err(|e| DeploydError::State(e.to_string()))?;
        let ApiAnswer::Hosts(mut hosts) = self.client.call(ApiCall::Hosts)? else {
            return Err(DeploydError::Unexpected("an answer to hosts".into()));
        };
        hosts.sort_by(|a, b| a.id.cmp(&b.id));
        let targets = hosts
            .iter()
            .filter(|h| selector.matches(&h.id, &h.labels))
            .map(|h| Target::from_labels(&h.id, &h.labels))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| DeploydError::State(e.to_string()))?;
        let records = self.inventory()?;
        let previous = records.iter().find(|r| r.key.to_string() == key).cloned();
        let others = records
            .into_iter()
            .filter(|r| r.key.to_string() != key)
            .collect();
        let secrets = self.secret_versions(&env)?;
        Ok(Facts {
            previous,
            targets,
            others,
            secrets,
        })
    }

    /// The environment's secrets and their versions (names only: the
    /// values stay in the referee, which seals them at submission).
    fn secret_versions(
        &mut self,
        env: &vigie_deployer::Environment,
    ) -> Result<std::collections::BTreeMap<String, u32>, DeploydError> {
        use vigie_wire::secrets::{SecretsAnswer, SecretsCall};
        if env.secret_names().is_empty() {
            return Ok(Default::default());
        }
        let call = ApiCall::Secrets(SecretsCall::Versions {
            tenant: self.tenant.clone(),
            app: env.key.app.to_string(),
            environment: env.key.environment.to_string(),
        });
        match self.client.call(call)? {
            ApiAnswer::Secrets(SecretsAnswer::Versions(v)) => Ok(v),
            other => Err(DeploydError::Unexpected(format!("{other:?}"))),
        }
    }

    /// Reads the open changes; each one ended goes to the machine.
    fn follow(&mut self) -> Result<(), DeploydError> {
        let open = self
            .machine
            .as_ref()
            .map(Machine::open_changes)
            .unwrap_or_default();
        for change in open {
            let call = ApiCall::Status {
                change: Some(change.clone()),
                limit: 1,
            };
            let views = self.client.changes(call)?;
            if let Some(v) = views.iter().find(|v| v.id == change && v.state.is_final()) {
                let lines = vigie_deployer::rollout::failure_lines(v);
                if !lines.is_empty() {
                    self.feed(Input::Failed {
                        change: change.clone(),
                        lines,
                    });
                }
                if let Some(text) = crate::verbs::told(v) {
                    self.feed(Input::Told {
                        change: change.clone(),
                        text,
                    });
                }
                self.feed(Input::Ended {
                    change,
                    ended: Ended::of(v),
                });
            }
        }
        Ok(())
    }
}

fn machine_key(m: &Machine) -> String {
    m.env().key.to_string()
}

fn machine_hosts(m: &Machine) -> String {
    m.env().hosts.clone()
}

/// The machine of a stored rollout: new, or rebuilt from its state.
fn build(stored: &Stored) -> Result<Machine, DeploydError> {
    let env = parse_environment(&stored.file, &stored.text)
        .map_err(|e| DeploydError::State(e.to_string()))?;
    if let Some(verb) = &stored.verb {
        return crate::verbs::build(env, stored, verb);
    }
    if stored.state.is_empty() {
        let options = Options {
            parallel: stored.parallel,
            from_maintenance: stored.from_maintenance,
            operator: stored.operator.clone(),
            started_ms: stored.started_ms,
            version: stored.version.clone(),
            canary: stored.canary,
        };
        let rollout = Rollout::new(env, stored.id.clone(), options);
        return Ok(Machine::Deploy(Box::new(rollout)));
    }
    let state: State =
        serde_json::from_slice(&stored.state).map_err(|e| DeploydError::State(e.to_string()))?;
    Rollout::resume(env, state)
        .map(|r| Machine::Deploy(Box::new(r)))
        .map_err(|e| DeploydError::State(e.to_string()))
}

/// The client a rollout acts through: inside its tenant, as the
/// operator who started it (the audit names them).
pub fn client_for(api: &str, orders: &str, stored: &Stored) -> Result<ApiClient, DeploydError> {
    let caller = Caller::internal(&stored.tenant, &stored.operator);
    let mut client = ApiClient::direct(api, orders, caller)?;
    client.set_timeout(std::time::Duration::from_secs(5));
    Ok(client)
}
