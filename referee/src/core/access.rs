//! Who may speak to the tower: the agents' key registry (`key/<public>`,
//! a [`Table`]) and the operators (`operator/<tenant>/<name>`). `Access`
//! is their only writer: each write goes to memory and the turn in one
//! call, so every call of a turn sees the ones before it. It answers who
//! holds a key and with which grants; auditing and publishing what
//! changed is the handlers' (`handlers/keys.rs`, `handlers/operators.rs`).

use std::collections::HashMap;

use vigie_wire::front::{Grant, KeyRecord, KeyState, OperatorRecord, Verb};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller, Origin};

use crate::core::codec::encode;
use crate::core::model::key_key;
use crate::core::operators::{forbidden, operator_key};
use crate::core::table::Table;
use crate::core::turn::Turn;

pub struct Access {
    /// The key registry by public key (a scan per registration made
    /// enrolment quadratic).
    keys: Table<String, KeyRecord>,
    operators: Vec<OperatorRecord>,
}

impl Access {
    /// What a start read (`shell/load.rs`).
    pub fn loaded(operators: Vec<OperatorRecord>, keys: HashMap<String, KeyRecord>) -> Self {
        Self {
            keys: Table::loaded(keys, |public| key_key(public)),
            operators,
        }
    }

    /// The key registry, by public key.
    pub fn keys(&self) -> &HashMap<String, KeyRecord> {
        &self.keys
    }

    /// Stores a key record (new or changed).
    pub fn put_key(&mut self, turn: &mut Turn, rec: KeyRecord) {
        self.keys.put(turn, rec.public.clone(), rec);
    }

    /// The keys still pending, waiting for an operator.
    pub fn pending(&self) -> usize {
        self.keys
            .values()
            .filter(|k| k.state == KeyState::Pending)
            .count()
    }

    /// The keys of `host` in `tenant` not revoked.
    pub fn live_keys(&self, tenant: &str, host: &str) -> Vec<KeyRecord> {
        self.keys
            .values()
            .filter(|k| k.host == host && k.tenant == tenant && k.state != KeyState::Revoked)
            .cloned()
            .collect()
    }

    /// Whether any key, in any state, names `host`.
    pub fn host_has_key(&self, host: &str) -> bool {
        self.keys.values().any(|k| k.host == host)
    }

    /// The accepted agent keys of `host` in `tenant`.
    pub fn accepted_keys<'a>(
        &'a self,
        tenant: &'a str,
        host: &'a str,
    ) -> impl Iterator<Item = &'a KeyRecord> + 'a {
        self.keys
            .values()
            .filter(move |k| k.host == host && k.tenant == tenant && k.state == KeyState::Accepted)
    }

    /// Every operator of every tenant, revoked ones too.
    pub fn operators(&self) -> &[OperatorRecord] {
        &self.operators
    }

    /// The operators, to change them in a test without storing.
    #[cfg(test)]
    pub fn operators_mut(&mut self) -> &mut Vec<OperatorRecord> {
        &mut self.operators
    }

    /// Stores an operator's record (new or changed).
    pub fn put_operator(&mut self, turn: &mut Turn, rec: OperatorRecord) {
        turn.put(operator_key(&rec.tenant, &rec.name), encode(&rec));
        match self
            .operators
            .iter_mut()
            .find(|o| o.tenant == rec.tenant && o.name == rec.name)
        {
            Some(o) => *o = rec,
            None => self.operators.push(rec),
        }
    }

    /// Operator `name` of tenant `home`, if not revoked.
    pub fn active(&self, home: &str, name: &str) -> Option<&OperatorRecord> {
        self.operators
            .iter()
            .find(|o| o.tenant == home && o.name == name && !o.revoked)
    }

    /// The grants a caller acts with: `None` for the tower itself (every
    /// power); an operator's own stored record otherwise, not what the
    /// front door said.
    pub fn powers(&self, caller: &Caller) -> Result<Option<&[Grant]>, ApiFault> {
        match &caller.origin {
            Origin::Tower => Ok(None),
            Origin::Operator { home } => self
                .active(home, &caller.operator)
                .map(|o| Some(o.grants.as_slice()))
                .ok_or_else(|| forbidden(format!("operator {} is not active", caller.operator))),
        }
    }

    /// Whether the caller's own record holds `changes.submit` over every
    /// host (what starting a deploy needs); the tower always does.
    pub fn may_deploy(&self, caller: &Caller) -> bool {
        let Origin::Operator { home } = &caller.origin else {
            return true;
        };
        self.active(home, &caller.operator)
            .is_some_and(|o| o.scopes(Verb::ChangesSubmit).iter().any(|s| s == "*"))
    }

    /// Whether an operator (revoked too) holds `public`.
    pub fn is_operator_key(&self, public: &str) -> bool {
        self.operators.iter().any(|o| o.public == public)
    }

    /// Keys are unique in the whole tower, across operators (revoked ones
    /// too: a revoked key stays refused) and agents (a pending key is
    /// free). The message names no tenant, host or operator: it must not
    /// tell one tenant of another.
    pub fn check_key_free(&self, public: &str) -> Result<(), ApiFault> {
        let taken = self.is_operator_key(public)
            || self
                .keys
                .get(public)
                .is_some_and(|k| k.state != KeyState::Pending);
        if taken {
            return Err(ApiFault::new(
                ApiFaultKind::Conflict,
                "this key is already in use: make a new one (`vigie keys gen`)",
            ));
        }
        Ok(())
    }
}
