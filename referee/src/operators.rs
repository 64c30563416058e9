//! The operators' catalogue: who may call the tower, in which tenant, with
//! which grants. Stored as `operator/<name>`, audited, and published on
//! `KEYS_TOPIC` after it is stored: the majordomo admits operators' keys
//! and checks their grants from its copy.

use vigie_escalator::Database;
use vigie_wire::front::{Grant, KeyState, OperatorRecord, Verb, KEYS_TOPIC};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Published};

use crate::keys::{all_keys, check_public};
use crate::tower::{encode, scan_all, Tower};
use crate::turn::Turn;

/// The operator made at the tower's first start.
pub const ADMIN: &str = "admin";
/// The tenant of the tower's own operators.
pub const TOWER_TENANT: &str = "default";

pub fn operator_key(name: &str) -> Vec<u8> {
    format!("operator/{name}").into_bytes()
}

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

pub fn all_operators(db: &Database) -> Result<Vec<OperatorRecord>, ApiFault> {
    scan_all(db, b"operator/")
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

fn check_grants(grants: &[Grant]) -> Result<(), ApiFault> {
    for g in grants {
        vigie_changes::Selector::parse(&g.scope).map_err(|e| {
            fault(
                ApiFaultKind::Invalid,
                format!("grant {g}: the host scope is not a selector: {e}"),
            )
        })?;
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
    Revoke {
        name: String,
    },
}

impl Tower {
    fn store_operator(
        &mut self,
        turn: &mut Turn,
        caller: &Caller,
        rec: OperatorRecord,
        action: &str,
    ) {
        turn.put(operator_key(&rec.name), encode(&rec));
        let grants: Vec<String> = rec.grants.iter().map(Grant::to_string).collect();
        let summary = format!(
            "operator {} key {} [{}]",
            rec.name,
            rec.public,
            grants.join(" ")
        );
        self.audit_host(turn, caller, "", action, summary);
        turn.logs.push(crate::turn::Log::OperatorChanged {
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
        db: &Database,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        let operators = all_operators(db)?;
        match call {
            OperatorCall::List => Ok(ApiAnswer::Operators(
                operators
                    .into_iter()
                    .filter(|o| o.tenant == caller.tenant)
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
                if operators
                    .iter()
                    .any(|o| o.name == name && o.tenant != caller.tenant)
                {
                    return Err(fault(
                        ApiFaultKind::Conflict,
                        format!("operator name {name} is taken"),
                    ));
                }
                let key_taken = operators
                    .iter()
                    .any(|o| o.public == public && o.name != name)
                    || all_keys(db)?
                        .iter()
                        .any(|k| k.public == public && k.state != KeyState::Pending);
                if key_taken {
                    return Err(fault(
                        ApiFaultKind::Conflict,
                        "this key already belongs to another operator or an agent: one key per operator",
                    ));
                }
                let rec = OperatorRecord {
                    name,
                    tenant: caller.tenant.clone(),
                    public,
                    grants,
                    revoked: false,
                };
                self.store_operator(turn, caller, rec, "operator_added");
                Ok(ApiAnswer::Done)
            }
            OperatorCall::Revoke { name } => {
                let Some(mut rec) = operators
                    .into_iter()
                    .find(|o| o.name == name && o.tenant == caller.tenant)
                else {
                    return Err(fault(ApiFaultKind::NotFound, format!("no operator {name}")));
                };
                rec.revoked = true;
                self.store_operator(turn, caller, rec, "operator_revoked");
                Ok(ApiAnswer::Done)
            }
        }
    }

    /// At the first start (no operator at all), makes the tower's admin:
    /// every permission over every host, in the tower's tenant.
    pub fn bootstrap_admin(
        &mut self,
        public: &str,
        db: &Database,
        turn: &mut Turn,
    ) -> Result<bool, ApiFault> {
        if !all_operators(db)?.is_empty() {
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
            db,
            turn,
        )?;
        Ok(true)
    }
}
