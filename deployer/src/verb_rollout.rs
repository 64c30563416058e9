//! A verb on a deployed environment (`verbs`) as a state machine without
//! I/O, with the deploy's inputs and outputs (`rollout`): the facts read,
//! the verb refused or its hosts changed one at a time (a host that fails
//! stops it: the others keep what they ran), the inventory written, the
//! end said. Its [`VerbState`] is recorded by the daemon before each step
//! acts, like a deploy's, and [`VerbRollout::start`] asks again for what
//! its phase lacks, under the same keys.
//! [`Machine`] is either rollout, for the daemon.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};
use vigie_wire::deploy::EnvVerb;

use crate::rollout::{Ended, Facts, Finish, Input, Output, Rollout, Sent};
use crate::spec::Environment;
use crate::verbs::{compile_verb, verb_record, verb_refusal, VerbHost};

/// Where a verb is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerbPhase {
    Plan,
    /// The change of the `n`th host.
    Host(usize),
    Settle,
    Done(Finish),
}

impl std::fmt::Display for VerbPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerbPhase::Plan => f.write_str("plan"),
            VerbPhase::Host(i) => write!(f, "host {}", i + 1),
            VerbPhase::Settle => f.write_str("settle"),
            VerbPhase::Done(end) => write!(f, "done: {}", end.word()),
        }
    }
}

/// A verb's whole state, recorded before each of its steps acts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerbState {
    pub token: String,
    pub verb: EnvVerb,
    /// Who asked, and when (ms since the epoch): the history says so.
    #[serde(default)]
    pub operator: String,
    #[serde(default)]
    pub started_ms: u64,
    pub facts: Option<Facts>,
    pub phase: VerbPhase,
    pub sent: Vec<Sent>,
    pub results: BTreeMap<String, (String, bool)>,
    pub keys: u32,
    /// What the current host's change printed for the operator, said
    /// with its end.
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct VerbRollout {
    env: Environment,
    state: VerbState,
}

impl VerbRollout {
    /// A verb not started yet; `token` is its id, `by` who asked and when.
    pub fn new(env: Environment, token: String, verb: EnvVerb, by: (String, u64)) -> VerbRollout {
        VerbRollout {
            env,
            state: VerbState {
                token,
                verb,
                operator: by.0,
                started_ms: by.1,
                facts: None,
                phase: VerbPhase::Plan,
                sent: Vec::new(),
                results: BTreeMap::new(),
                keys: 0,
                notes: Vec::new(),
            },
        }
    }

    pub fn resume(env: Environment, state: VerbState) -> VerbRollout {
        VerbRollout { env, state }
    }

    pub fn state(&self) -> &VerbState {
        &self.state
    }

    pub fn finished(&self) -> Option<Finish> {
        match self.state.phase {
            VerbPhase::Done(f) => Some(f),
            _ => None,
        }
    }

    pub fn open_changes(&self) -> Vec<String> {
        self.state
            .sent
            .iter()
            .filter(|s| s.ended.is_none())
            .filter_map(|s| s.change.clone())
            .collect()
    }

    pub fn start(&mut self) -> Vec<Output> {
        match self.state.phase {
            VerbPhase::Plan => vec![Output::ReadFacts],
            VerbPhase::Host(_) => self.submits(),
            VerbPhase::Settle => self.settle(),
            VerbPhase::Done(_) => Vec::new(),
        }
    }

    pub fn step(&mut self, input: Input) -> Vec<Output> {
        match input {
            Input::Facts(facts) if self.state.phase == VerbPhase::Plan => self.planned(facts),
            Input::Submitted { key, change } => {
                let Some(sent) = self.state.sent.iter_mut().find(|s| s.key == key) else {
                    return Vec::new();
                };
                if sent.change.is_some() {
                    return Vec::new();
                }
                sent.change = Some(change.clone());
                vec![Output::Say(format!(
                    "{}: change {change} queued",
                    sent.host
                ))]
            }
            Input::Ended { change, ended } => self.ended(&change, ended.ok),
            Input::Failed { change, lines } => {
                crate::rollout::say_failure(&self.state.sent, &change, &lines)
            }
            Input::SubmitRefused { key, why } => self.refused(&key, &why),
            Input::Told { change, text } => {
                self.told(&change, &text);
                Vec::new()
            }
            Input::Recorded { done: true } if self.state.phase == VerbPhase::Settle => {
                self.finish()
            }
            Input::RecordRefused(why) => {
                let mut out = vec![Output::Say(format!(
                    "the inventory refused the record: {why}"
                ))];
                out.extend(self.done(Finish::Failed));
                out
            }
            // A verb never waits for a word: a continue or abort is not for it.
            Input::Facts(_) | Input::Recorded { .. } | Input::Command(_) => Vec::new(),
        }
    }

    fn done(&mut self, finish: Finish) -> Vec<Output> {
        self.state.phase = VerbPhase::Done(finish);
        self.state.sent.clear();
        vec![Output::Done(finish)]
    }

    fn word(&self) -> String {
        match crate::verbs::services_of(&self.state.verb) {
            Some(s) => format!("{} {} (service {s})", self.state.verb.word(), self.env.key),
            None => format!("{} {}", self.state.verb.word(), self.env.key),
        }
    }

    fn planned(&mut self, facts: Facts) -> Vec<Output> {
        let Some(record) = facts.previous.clone() else {
            let mut out = vec![Output::Say(format!("{} is not deployed", self.env.key))];
            out.extend(self.done(Finish::Refused));
            return out;
        };
        let unset = self
            .writes_secrets()
            .then(|| self.env.pin_secrets(&facts.secrets).err())
            .flatten()
            .map(|e| e.to_string());
        if let Some(why) = verb_refusal(&self.env, &record, &self.state.verb).or(unset) {
            let mut out = vec![Output::Say(why)];
            out.extend(self.done(Finish::Refused));
            return out;
        }
        self.state.facts = Some(facts);
        let hosts = self.hosts();
        let mut out = vec![Output::Say(format!(
            "{}: {} host(s), one at a time",
            self.word(),
            hosts.len()
        ))];
        out.extend(self.host(0));
        out
    }

    /// Whether the verb writes the current secrets into env files (a
    /// secret that is not set refuses it before any host is asked).
    fn writes_secrets(&self) -> bool {
        matches!(
            self.state.verb,
            EnvVerb::Start { .. }
                | EnvVerb::Restart { .. }
                | EnvVerb::Rollback
                | EnvVerb::Rotate { .. }
        )
    }

    /// The hosts the verb changes, in order: where the record places the
    /// environment (and, for `clean`, every host it targets).
    fn hosts(&self) -> Vec<String> {
        let Some(facts) = &self.state.facts else {
            return Vec::new();
        };
        let Some(record) = &facts.previous else {
            return Vec::new();
        };
        let mut hosts: Vec<String> = record.hosts.keys().cloned().collect();
        if matches!(self.state.verb, EnvVerb::Clean { .. }) {
            hosts.extend(facts.targets.iter().map(|t| t.id.clone()));
            hosts.sort();
            hosts.dedup();
        }
        hosts
            .into_iter()
            .filter(|h| self.spec_of(h).is_some())
            .collect()
    }

    fn spec_of(&self, host: &str) -> Option<vigie_wire::change::ChangeSpec> {
        let facts = self.state.facts.as_ref()?;
        let record = facts.previous.as_ref()?;
        let address = facts
            .targets
            .iter()
            .find(|t| t.id == host)
            .map_or(Ipv4Addr::LOCALHOST, |t| t.address);
        let first = record.hosts.keys().next().is_some_and(|h| h == host);
        let at = VerbHost {
            host,
            address,
            first,
            others: &facts.others,
        };
        compile_verb(&self.env, record, &self.state.verb, &at)
    }

    fn host(&mut self, index: usize) -> Vec<Output> {
        let Some(host) = self.hosts().get(index).cloned() else {
            return self.settle();
        };
        self.state.phase = VerbPhase::Host(index);
        self.state.keys += 1;
        self.state.sent = vec![Sent {
            host,
            key: format!("{}-{}", self.state.token, self.state.keys),
            change: None,
            ended: None,
        }];
        self.submits()
    }

    fn submits(&self) -> Vec<Output> {
        self.state
            .sent
            .iter()
            .filter(|s| s.change.is_none())
            .filter_map(|s| {
                self.spec_of(&s.host).map(|spec| Output::Submit {
                    host: s.host.clone(),
                    key: s.key.clone(),
                    spec,
                })
            })
            .collect()
    }

    fn ended(&mut self, change: &str, ok: bool) -> Vec<Output> {
        let VerbPhase::Host(index) = self.state.phase else {
            return Vec::new();
        };
        let Some(sent) = self
            .state
            .sent
            .iter_mut()
            .find(|s| s.change.as_deref() == Some(change) && s.ended.is_none())
        else {
            return Vec::new();
        };
        sent.ended = Some(Ended {
            ok,
            migrate: crate::MigrateRun::NotRun,
            probe: None,
        });
        let host = sent.host.clone();
        self.state
            .results
            .insert(host.clone(), (change.to_owned(), ok));
        let mut out: Vec<Output> = self.state.notes.drain(..).map(Output::Say).collect();
        out.push(Output::Say(format!(
            "{host}: change {change} {}",
            if ok { "succeeded" } else { "rolled back" }
        )));
        if ok {
            out.extend(self.host(index + 1));
        } else {
            out.push(Output::Say(format!(
                "{host} rolled back: {} stops here, the other hosts keep what they ran",
                self.state.verb.word()
            )));
            out.extend(self.settle());
        }
        out
    }

    fn refused(&mut self, key: &str, why: &str) -> Vec<Output> {
        let Some((refused, said)) = crate::rollout::refuse(&mut self.state.sent, key, why) else {
            return Vec::new();
        };
        let mut out = vec![said];
        out.extend(self.ended(&refused, false));
        out
    }

    /// What a change printed for the operator (`clean`'s list), kept
    /// to be said with its end.
    fn told(&mut self, change: &str, text: &str) {
        let Some(sent) = self
            .state
            .sent
            .iter()
            .find(|s| s.change.as_deref() == Some(change) && s.ended.is_none())
        else {
            return;
        };
        let host = sent.host.clone();
        self.state.notes = text
            .lines()
            .filter_map(|l| l.strip_prefix("clean: "))
            .map(|l| format!("{host}: {l}"))
            .collect();
    }

    fn settle(&mut self) -> Vec<Output> {
        self.state.phase = VerbPhase::Settle;
        self.state.sent.clear();
        let Some(facts) = &self.state.facts else {
            return self.done(Finish::Failed);
        };
        let Some(record) = &facts.previous else {
            return self.done(Finish::Failed);
        };
        if !self.state.verb.changes_hosts() {
            return self.finish();
        }
        let mut next = verb_record(
            &self.env,
            record,
            &self.state.verb,
            &self.state.results,
            &facts.others,
        );
        if let Some(last) = next.history.last_mut() {
            last.at_ms = Some(self.state.started_ms);
            last.operator = Some(self.state.operator.clone());
        }
        let all_ok = self.state.results.values().all(|(_, ok)| *ok);
        if let (EnvVerb::Rotate { secret }, true) = (&self.state.verb, all_ok) {
            crate::verb_secrets::rotated_digests(&self.env, secret, &facts.secrets, &mut next);
        }
        vec![Output::Record {
            record: next,
            expected: u32::try_from(record.history.len()).unwrap_or(u32::MAX),
            done: true,
        }]
    }

    fn finish(&mut self) -> Vec<Output> {
        let ok = self.state.results.values().all(|(_, ok)| *ok);
        let finish = if ok {
            Finish::Succeeded
        } else {
            Finish::RolledBack
        };
        let mut out = vec![Output::Say(format!("{}: {}", self.word(), finish.word()))];
        out.extend(self.done(finish));
        out
    }
}

/// A rollout the daemon carries out: a deploy or a verb.
#[derive(Debug, Clone)]
pub enum Machine {
    Deploy(Box<Rollout>),
    Verb(Box<VerbRollout>),
}

impl Machine {
    /// Whether it waits after its canary for `continue` or `abort` (a
    /// verb never does).
    pub fn waits_for_a_word(&self) -> bool {
        match self {
            Machine::Deploy(m) => matches!(m.state().phase, crate::rollout::Phase::Wait(_)),
            Machine::Verb(_) => false,
        }
    }

    pub fn start(&mut self) -> Vec<Output> {
        match self {
            Machine::Deploy(m) => m.start(),
            Machine::Verb(m) => m.start(),
        }
    }

    pub fn step(&mut self, input: Input) -> Vec<Output> {
        match self {
            Machine::Deploy(m) => m.step(input),
            Machine::Verb(m) => m.step(input),
        }
    }

    pub fn env(&self) -> &Environment {
        match self {
            Machine::Deploy(m) => m.env(),
            Machine::Verb(m) => &m.env,
        }
    }

    pub fn finished(&self) -> Option<Finish> {
        match self {
            Machine::Deploy(m) => m.finished(),
            Machine::Verb(m) => m.finished(),
        }
    }

    pub fn open_changes(&self) -> Vec<String> {
        match self {
            Machine::Deploy(m) => m.open_changes(),
            Machine::Verb(m) => m.open_changes(),
        }
    }

    pub fn phase(&self) -> String {
        match self {
            Machine::Deploy(m) => m.state().phase.to_string(),
            Machine::Verb(m) => m.state.phase.to_string(),
        }
    }

    /// The state the daemon records (JSON).
    pub fn state_json(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Machine::Deploy(m) => serde_json::to_vec(m.state()),
            Machine::Verb(m) => serde_json::to_vec(&m.state),
        }
    }
}
