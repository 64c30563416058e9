//! The operators' catalogue: who may call the tower, in which tenant, with
//! which grants. Stored as `operator/<name>`, audited, and published on
//! `KEYS_TOPIC` after it is stored: the majordomo admits operators' keys
//! and checks their grants from its copy.

use vigie_wire::front::{Grant, KeyState, OperatorRecord, Verb, KEYS_TOPIC};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Origin, Published};

use crate::core::audit::AuditAction;
use crate::core::codec::encode;
use crate::core::grants::Over;
use crate::core::keys::check_public;
use crate::core::tower::Tower;
use crate::core::turn::Turn;

/// The operator made at the tower's first start.
pub const ADMIN: &str = "admin";
/// The tenant of the tower's own operators (the wire's, which the
/// daemons that only call the referee name too).
pub use vigie_wire::ids::TOWER_TENANT;

/// Operator names are per tenant: `operator/<tenant>/<name>`.
pub fn operator_key(tenant: &str, name: &str) -> Vec<u8> {
    format!("operator/{tenant}/{name}").into_bytes()
}

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// Operator names and tenant names follow the host id rules.
fn check_name(what: &str, name: &str) -> Result<(), ApiFault> {
    vigie_changes::validate_host_id(name).map_err(|e| {
        fault(
            ApiFaultKind::Invalid,
            format!("{what} name: {}", e.to_string().replace("host id", "name")),
        )
    })
}

pub(crate) fn check_grants(grants: &[Grant]) -> Result<(), ApiFault> {
    for g in grants {
        let scope = vigie_changes::GrantScope::parse(&g.scope).map_err(|e| {
            fault(
                ApiFaultKind::Invalid,
                format!("grant {g}: the scope is neither hosts nor an application: {e}"),
            )
        })?;
        scope
            .fits(g.verb)
            .map_err(|e| fault(ApiFaultKind::Invalid, format!("grant {g}: {e}")))?;
    }
    Ok(())
}

pub enum OperatorCall {
    List,
    Add {
        name: String,
        public: String,
        grants: Vec<Grant>,
    },
    RotateKey {
        name: String,
        public: String,
    },
    Revoke {
        name: String,
    },
    /// Gives (`give`) or takes one grant in place (`regrant.rs`).
    Regrant {
        name: String,
        grant: Grant,
        give: bool,
    },
}

pub(crate) fn forbidden(msg: String) -> ApiFault {
    fault(ApiFaultKind::Forbidden, msg)
}

/// The grants a caller acts with: `None` for the tower itself (every
/// power); an operator's own stored record otherwise, not what the front
/// door said.
pub(crate) fn powers<'a>(
    caller: &Caller,
    operators: &'a [OperatorRecord],
) -> Result<Option<&'a [Grant]>, ApiFault> {
    match &caller.origin {
        Origin::Tower => Ok(None),
        Origin::Operator { home } => operators
            .iter()
            .find(|o| o.tenant == *home && o.name == caller.operator && !o.revoked)
            .map(|o| Some(o.grants.as_slice()))
            .ok_or_else(|| forbidden(format!("operator {} is not active", caller.operator))),
    }
}

/// Keys are unique in the whole tower, across operators (revoked ones
/// too: a revoked key stays refused) and agents. The message names no
/// tenant, host or operator: it must not tell one tenant of another.
fn check_key_free(
    public: &str,
    operators: &[OperatorRecord],
    keys: &std::collections::HashMap<String, vigie_wire::front::KeyRecord>,
) -> Result<(), ApiFault> {
    let taken = operators.iter().any(|o| o.public == public)
        || keys
            .get(public)
            .is_some_and(|k| k.state != KeyState::Pending);
    if taken {
        return Err(fault(
            ApiFaultKind::Conflict,
            "this key is already in use: make a new one (`vigie keys gen`)",
        ));
    }
    Ok(())
}

impl Tower {
    /// Refuses, audited, what would raise the caller's power: `beyond` is
    /// what the caller lacks for it (`what` says what it tried). The
    /// record and the message stay in the caller's tenant: they name the
    /// caller, the operator acted on and grants, never another tenant.
    pub(crate) fn refuse_beyond(
        &mut self,
        turn: &mut Turn,
        caller: &Caller,
        beyond: &[&Grant],
        what: &str,
    ) -> Result<(), ApiFault> {
        if beyond.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = beyond.iter().map(|g| g.to_string()).collect();
        let msg = format!(
            "operator {} may not {what}: {} beyond its own grants",
            caller.operator,
            list.join(" ")
        );
        tracing::warn!(event = "operator_refused", tenant = %caller.tenant, operator = %caller.operator, reason = %msg);
        self.audit_host(turn, caller, "", AuditAction::OperatorRefused, msg.clone());
        Err(forbidden(msg))
    }

    /// Refuses, audited, to rotate the key of or revoke `target` unless
    /// the caller holds every grant it holds.
    pub(crate) fn check_over(
        &mut self,
        turn: &mut Turn,
        caller: &Caller,
        held: Option<&[Grant]>,
        target: &OperatorRecord,
        over: Over,
    ) -> Result<(), ApiFault> {
        let lacking = held.map_or_else(Vec::new, |h| crate::core::grants::stronger(h, target));
        let what = format!("{} operator {}", over.word(), target.name);
        self.refuse_beyond(turn, caller, &lacking, &what)
    }

    pub(crate) fn store_operator(
        &mut self,
        turn: &mut Turn,
        caller: &Caller,
        rec: OperatorRecord,
        action: AuditAction,
    ) {
        turn.put(operator_key(&rec.tenant, &rec.name), encode(&rec));
        match self
            .operators
            .iter_mut()
            .find(|o| o.tenant == rec.tenant && o.name == rec.name)
        {
            Some(o) => *o = rec.clone(),
            None => self.operators.push(rec.clone()),
        }
        let grants: Vec<String> = rec.grants.iter().map(Grant::to_string).collect();
        let summary = format!(
            "operator {} key {} [{}]",
            rec.name,
            rec.public,
            grants.join(" ")
        );
        self.audit_host(turn, caller, "", action, summary);
        turn.logs.push(crate::core::turn::Log::OperatorChanged {
            name: rec.name.clone(),
            tenant: rec.tenant.clone(),
            revoked: rec.revoked,
        });
        turn.publish
            .push((vec![KEYS_TOPIC.to_vec()], Published::Operator(rec)));
    }

    pub fn operator_call(
        &mut self,
        caller: &Caller,
        call: OperatorCall,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        let operators = self.operators.clone();
        let mine = |name: &str| {
            operators
                .iter()
                .find(|o| o.name == name && o.tenant == caller.tenant)
        };
        match call {
            OperatorCall::List => Ok(ApiAnswer::Operators(
                operators
                    .iter()
                    .filter(|o| o.tenant == caller.tenant)
                    .cloned()
                    .collect(),
            )),
            OperatorCall::Add {
                name,
                public,
                grants,
            } => {
                check_name("operator", &name)?;
                check_name("tenant", &caller.tenant)?;
                check_public(&public)?;
                check_grants(&grants)?;
                let held = powers(caller, &operators)?;
                let lacking =
                    held.map_or_else(Vec::new, |h| crate::core::grants::beyond(h, &grants));
                self.refuse_beyond(turn, caller, &lacking, "grant")?;
                if mine(&name).is_some_and(|o| !o.revoked) {
                    return Err(fault(
                        ApiFaultKind::Conflict,
                        format!(
                            "operator {name} exists: `operators rotate-key` gives it a new key; \
                             revoke it before adding it again"
                        ),
                    ));
                }
                check_key_free(&public, &operators, &self.keys)?;
                let rec = OperatorRecord {
                    name,
                    tenant: caller.tenant.clone(),
                    public,
                    grants,
                    revoked: false,
                };
                self.store_operator(turn, caller, rec, AuditAction::OperatorAdded);
                Ok(ApiAnswer::Done)
            }
            OperatorCall::RotateKey { name, public } => {
                check_public(&public)?;
                let Some(rec) = mine(&name).filter(|o| !o.revoked) else {
                    return Err(fault(ApiFaultKind::NotFound, format!("no operator {name}")));
                };
                // Whoever holds the new key becomes that operator.
                self.check_over(turn, caller, powers(caller, &operators)?, rec, Over::Rotate)?;
                check_key_free(&public, &operators, &self.keys)?;
                let mut rec = rec.clone();
                rec.public = public;
                self.store_operator(turn, caller, rec, AuditAction::OperatorKeyRotated);
                Ok(ApiAnswer::Done)
            }
            OperatorCall::Revoke { name } => self.revoke(turn, caller, &operators, &name),
            OperatorCall::Regrant { name, grant, give } => {
                self.regrant(turn, caller, &operators, &name, grant, give)
            }
        }
    }

    /// Cuts an operator of the caller's tenant off (already revoked: done).
    fn revoke(
        &mut self,
        turn: &mut Turn,
        caller: &Caller,
        operators: &[OperatorRecord],
        name: &str,
    ) -> Result<ApiAnswer, ApiFault> {
        let Some(rec) = operators
            .iter()
            .find(|o| o.name == name && o.tenant == caller.tenant)
        else {
            return Err(fault(ApiFaultKind::NotFound, format!("no operator {name}")));
        };
        if rec.revoked {
            return Ok(ApiAnswer::Done);
        }
        // A compromised key is cut off by someone at least as strong: the
        // tower's admin holds every grant.
        self.check_over(turn, caller, powers(caller, operators)?, rec, Over::Revoke)?;
        if let Some(verb) = crate::core::grants::last_holder(operators, rec) {
            return Err(fault(
                ApiFaultKind::Conflict,
                format!(
                    "operator {name} is the last who holds {}: grant it to another \
                     operator first",
                    verb.word()
                ),
            ));
        }
        let mut rec = rec.clone();
        rec.revoked = true;
        self.store_operator(turn, caller, rec, AuditAction::OperatorRevoked);
        Ok(ApiAnswer::Done)
    }

    /// At the first start (no operator at all), makes the tower's admin:
    /// every permission over every host, in the tower's tenant.
    pub fn bootstrap_admin(&mut self, public: &str, turn: &mut Turn) -> Result<bool, ApiFault> {
        if !self.operators.is_empty() {
            return Ok(false);
        }
        let caller = Caller::internal(TOWER_TENANT, "tower");
        let grants = Verb::ALL
            .into_iter()
            .map(|verb| Grant {
                verb,
                scope: "*".into(),
            })
            .collect();
        self.operator_call(
            &caller,
            OperatorCall::Add {
                name: ADMIN.into(),
                public: public.to_owned(),
                grants,
            },
            turn,
        )?;
        Ok(true)
    }
}
