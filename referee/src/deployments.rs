//! The deployer's inventory, kept by the referee (the single writer of
//! tower state): one record per tenant and environment under
//! `deploy/<tenant>/<app>/<environment>`, so another environment's deploy
//! never touches it. A record is stored only if it parses as the
//! deployer's `EnvRecord` for that environment and the environment did not
//! move since the deploy was planned (compare-and-set on its history
//! length): two deploys of one environment at once cannot both win.

use vigie_deployer::{EnvRecord, Part};
use vigie_escalator::Database;
use vigie_wire::deploy::{DeployAnswer, DeployCall, Deployment};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller};

use crate::tower::{decode, encode, scan_all, Tower};
use crate::turn::Turn;

pub fn deployment_key(tenant: &str, app: &str, environment: &str) -> Vec<u8> {
    format!("deploy/{tenant}/{app}/{environment}").into_bytes()
}

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// The stored value of `key`, counting this turn's writes not yet stored.
fn current(db: &Database, turn: &Turn, key: &[u8]) -> Result<Option<Vec<u8>>, ApiFault> {
    if let Some((_, value)) = turn.writes.iter().rev().find(|(k, _)| k == key) {
        return Ok(value.clone());
    }
    db.get(key)
        .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))
}

impl Tower {
    pub(crate) fn deploy_call(
        &mut self,
        caller: &Caller,
        call: DeployCall,
        db: &Database,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        match call {
            DeployCall::List => {
                let prefix = format!("deploy/{}/", caller.tenant);
                let mut all: Vec<Deployment> = scan_all(db, prefix.as_bytes())?;
                // This turn's writes too, so a list right after a record sees it.
                for (key, value) in &turn.writes {
                    if let (true, Some(value)) = (key.starts_with(prefix.as_bytes()), value) {
                        let d: Deployment = decode(key, value)
                            .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))?;
                        all.retain(|o| (&o.app, &o.environment) != (&d.app, &d.environment));
                        all.push(d);
                    }
                }
                Ok(ApiAnswer::Deploy(DeployAnswer::Deployments(all)))
            }
            DeployCall::Record {
                app,
                environment,
                expected,
                record,
            } => {
                let parsed = EnvRecord::from_json(&record)
                    .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
                let names_ok = Part::parse(&app).is_ok_and(|a| a == parsed.key.app)
                    && Part::parse(&environment).is_ok_and(|e| e == parsed.key.environment);
                if !names_ok {
                    return Err(fault(
                        ApiFaultKind::Invalid,
                        format!("the record is not that of {app}/{environment}"),
                    ));
                }
                let key = deployment_key(&caller.tenant, &app, &environment);
                let stored = match current(db, turn, &key)? {
                    Some(bytes) => {
                        let d: Deployment = decode(&key, &bytes)
                            .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))?;
                        EnvRecord::from_json(&d.record)
                            .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))?
                            .history
                            .len()
                    }
                    None => 0,
                };
                if stored != expected as usize || parsed.history.len() != stored + 1 {
                    return Err(fault(
                        ApiFaultKind::Conflict,
                        format!(
                            "{app}/{environment} has {stored} deploys recorded, this one was planned after {expected}: another deploy ran meanwhile; plan again"
                        ),
                    ));
                }
                let summary = match parsed.history.last() {
                    Some(last) => {
                        let bumped: Vec<String> = last
                            .bumped
                            .iter()
                            .map(|(c, n)| format!("{c} → {n}"))
                            .collect();
                        format!(
                            "{app}/{environment} deploy #{} {:?}: {}",
                            last.number,
                            last.outcome,
                            if bumped.is_empty() {
                                "nothing bumped".into()
                            } else {
                                bumped.join(", ")
                            }
                        )
                    }
                    None => format!("{app}/{environment}"),
                };
                turn.put(
                    key,
                    encode(&Deployment {
                        app,
                        environment,
                        record,
                    }),
                );
                self.audit_host(turn, caller, "", "deployed", summary);
                Ok(ApiAnswer::Deploy(DeployAnswer::Recorded))
            }
        }
    }
}
