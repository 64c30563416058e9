//! The deployer's inventory, kept by the referee (the single writer of
//! tower state): one record per tenant and environment under
//! `deploy/<tenant>/<app>/<environment>`, so another environment's deploy
//! never touches it. A record is stored only if it parses as the
//! deployer's `EnvRecord` for that environment and the environment did not
//! move since the deploy was planned (compare-and-set on its history
//! length, `vigie_deployer::may_record`; a deploy may rewrite the
//! in-progress entry its own run wrote): two deploys of one environment
//! at once cannot both win.

use vigie_deployer::{may_record, EnvRecord, Part};
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
                // An environment spans hosts: recording where it runs needs
                // `changes.submit` over every host, not a narrower scope.
                if !crate::scope::Visible::of(caller).unscoped() {
                    return Err(ApiFault::new(
                        ApiFaultKind::Forbidden,
                        format!(
                            "operator {} may not record deployments: needs changes.submit over every host",
                            caller.operator
                        ),
                    ));
                }
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
                        Some(
                            EnvRecord::from_json(&d.record)
                                .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))?,
                        )
                    }
                    None => None,
                };
                if let Err(c) = may_record(stored.as_ref(), expected, &parsed) {
                    return Err(fault(
                        ApiFaultKind::Conflict,
                        format!(
                            "{app}/{environment} has {} deploys recorded, this one was planned after {}: another deploy ran meanwhile; plan again",
                            c.stored, c.expected
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

#[cfg(test)]
mod tests {

    use vigie_deployer::{parse_environment, plan, settle, Target};
    use vigie_wire::deploy::{DeployAnswer, DeployCall};
    use vigie_wire::tower::{ApiAnswer, ApiFaultKind, Caller};

    use crate::tower::Tower;
    use crate::turn::Turn;

    const ENV: &str = "app: shop\nenvironment: prod\nhosts: web-1\nservices:\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    health:\n      http: /h\n";

    /// The JSON record of a deploy of ENV at `revision` after `previous`.
    fn record(
        revision: &str,
        previous: Option<&vigie_deployer::EnvRecord>,
    ) -> vigie_deployer::EnvRecord {
        let env = parse_environment("e", &ENV.replace("v1", revision)).unwrap();
        let targets = [Target::from_labels("web-1", &Default::default()).unwrap()];
        let p = plan(&env, previous, &targets, &[]).unwrap();
        let ok = [("web-1".to_string(), ("c1".to_string(), true))].into();
        settle(previous, &p, &env, &ok)
    }

    fn call(record: &vigie_deployer::EnvRecord, expected: u32, app: &str) -> DeployCall {
        DeployCall::Record {
            app: app.into(),
            environment: "prod".into(),
            expected,
            record: record.to_json().unwrap(),
        }
    }

    #[test]
    fn records_are_per_tenant_checked_and_never_overwritten_by_a_stale_deploy() {
        let s = crate::test_store::store();
        let mut tower = s.tower();
        let db = &s.db;
        let alice = Caller::internal("alice", "op");
        let bob = Caller::internal("bob", "op");
        let mut turn = Turn::default();

        let r1 = record("v1", None);
        tower
            .deploy_call(&alice, call(&r1, 0, "shop"), db, &mut turn)
            .unwrap();
        // Two deploys planned on the same state: the second is refused.
        let r2 = record("v2", Some(&r1));
        tower
            .deploy_call(&alice, call(&r2, 1, "shop"), db, &mut turn)
            .unwrap();
        let stale = record("v3", Some(&r1));
        let err = tower
            .deploy_call(&alice, call(&stale, 1, "shop"), db, &mut turn)
            .unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Conflict, "{err}");
        // A record under another environment's name, or not a record at all.
        let err = tower
            .deploy_call(&alice, call(&r1, 0, "other"), db, &mut turn)
            .unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Invalid, "{err}");
        let garbage = DeployCall::Record {
            app: "shop".into(),
            environment: "prod".into(),
            expected: 2,
            record: b"{".to_vec(),
        };
        let err = tower
            .deploy_call(&alice, garbage, db, &mut turn)
            .unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Invalid, "{err}");

        let list = |tower: &mut Tower, who: &Caller, turn: &mut Turn| match tower
            .deploy_call(who, DeployCall::List, db, turn)
            .unwrap()
        {
            ApiAnswer::Deploy(DeployAnswer::Deployments(all)) => all,
            other => panic!("{other:?}"),
        };
        let seen = list(&mut tower, &alice, &mut turn);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            vigie_deployer::EnvRecord::from_json(&seen[0].record).unwrap(),
            r2
        );
        assert!(
            list(&mut tower, &bob, &mut turn).is_empty(),
            "another tenant sees nothing"
        );
        assert_eq!(
            turn.writes
                .iter()
                .filter(|(k, _)| k.starts_with(b"audit/rec/"))
                .count(),
            2
        );
    }
}
