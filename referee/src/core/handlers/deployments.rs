//! The deployer's inventory, kept by the referee (the single writer of
//! tower state): one record per tenant and environment under
//! `deploy/<tenant>/<app>/<environment>`, so another environment's deploy
//! never touches it. A record is stored only if it parses as the
//! deployer's `EnvRecord` for that environment and the environment did not
//! move since the deploy was planned (compare-and-set on its history
//! length, `vigie_deployer::may_record`; a deploy may rewrite the
//! in-progress entry its own run wrote): two deploys of one environment
//! at once cannot both win.
//!
//! A reader whose `changes.read` is narrowed to some hosts sees a
//! deployment only if every host it names — where it runs now and every
//! host of its history — is inside that scope; otherwise it does not exist
//! for them. Showing it whole would name hosts outside the scope (with
//! their ports and change ids), and showing it cut down would be a record
//! whose components and history speak for hosts it no longer shows: the
//! whole-or-nothing rule leaks least. A reader whose scope names the
//! environment (`changes.read@shop/*`, `deploy@shop/prod`) sees it whole.

use vigie_deployer::{may_record, EnvRecord, Part};
use vigie_wire::deploy::{DeployAnswer, DeployCall, Deployment};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::codec::{decode, encode};
use crate::core::fetched::Fetched;
use crate::core::handlers::{deploy_verbs, follow, rollout_command, rollouts};
use crate::core::model::deployment_key;
use crate::core::rollouts::{current, open_rollouts, tower_only};
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::Turn;

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// Every host a deployment names: where it runs and where any of its
/// deploys sent a change. `None` when the record does not parse.
fn hosts_named(d: &Deployment) -> Option<std::collections::BTreeSet<String>> {
    let rec = EnvRecord::from_json(&d.record).ok()?;
    let past = rec.history.iter().flat_map(|h| h.changes.keys());
    Some(rec.hosts.keys().chain(past).cloned().collect())
}

/// Whether a scoped reader sees `d`: every host it names is inside the
/// scope. One naming no host (or unreadable) is only seen unscoped,
/// like every record that names no host.
fn deployment_visible(core: &Core, vis: &Visible, d: &Deployment) -> bool {
    if vis.env(&d.app, &d.environment) {
        return true;
    }
    match hosts_named(d) {
        Some(hosts) if !hosts.is_empty() => hosts
            .iter()
            .all(|h| super::scope::host_visible(core, vis, h)),
        _ => vis.unscoped(),
    }
}

/// A deployments call: the inventory's (`List`, `Record`) here, the
/// rollouts' in `rollouts.rs`, `deploy_verbs.rs`, `rollout_command.rs`
/// and `follow.rs`; the deploy daemon's own calls only from the tower.
pub fn deploy_call(
    core: &mut Core,
    caller: &Caller,
    call: DeployCall,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let answer = match call {
        DeployCall::List => return deploy_list(core, caller, db, turn),
        DeployCall::Record {
            app,
            environment,
            expected,
            record,
        } => {
            let d = Deployment {
                app,
                environment,
                record,
            };
            return deploy_record(core, caller, d, expected, db, turn);
        }
        c @ (DeployCall::Start { .. } | DeployCall::StartVersion { .. }) => {
            rollouts::start_call(core, caller, c, db, turn)?
        }
        v @ DeployCall::Verb { .. } => deploy_verbs::start_verb(core, caller, v, db, turn)?,
        DeployCall::Rollout { app, environment } => {
            rollouts::watch(core, caller, &app, &environment, db, turn)?
        }
        c @ DeployCall::Command { .. } => {
            rollout_command::rollout_command(core, caller, c, db, turn)?
        }
        DeployCall::Rollouts => {
            tower_only(caller)?;
            DeployAnswer::Rollouts(open_rollouts(db, turn)?)
        }
        DeployCall::Follow => {
            tower_only(caller)?;
            follow::follow(core, db, turn)?
        }
        p @ DeployCall::Progress { .. } => {
            tower_only(caller)?;
            rollouts::rollout_progress(core, p, db, turn)?
        }
    };
    Ok(ApiAnswer::Deploy(answer))
}

/// The tenant's deployments the caller may see, this turn's included.
fn deploy_list(
    core: &Core,
    caller: &Caller,
    db: &Fetched,
    turn: &Turn,
) -> Result<ApiAnswer, ApiFault> {
    let prefix = format!("deploy/{}/", caller.tenant);
    let mut all: Vec<Deployment> = db
        .scan(prefix.as_bytes())
        .map_err(|e| fault(ApiFaultKind::Storage, e))?
        .iter()
        .map(|(k, v)| decode(k, v).map_err(|e| fault(ApiFaultKind::Storage, e.to_string())))
        .collect::<Result<_, _>>()?;
    // This turn's writes too, so a list right after a record sees it.
    for (key, value) in &turn.writes {
        if let (true, Some(value)) = (key.starts_with(prefix.as_bytes()), value) {
            let d: Deployment =
                decode(key, value).map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))?;
            all.retain(|o| (&o.app, &o.environment) != (&d.app, &d.environment));
            all.push(d);
        }
    }
    let vis = Visible::of(caller);
    if !vis.unscoped() {
        all.retain(|d| deployment_visible(core, &vis, d));
    }
    Ok(ApiAnswer::Deploy(DeployAnswer::Deployments(all)))
}

/// Stores a deploy's record if the environment's history did not move
/// since it was planned (`may_record`), audited `deployed`.
fn deploy_record(
    core: &mut Core,
    caller: &Caller,
    deployment: Deployment,
    expected: u32,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let Deployment {
        app,
        environment,
        record,
    } = deployment;
    // An environment spans hosts: recording where it runs needs
    // `changes.submit` over every host, not a narrower scope.
    if !Visible::of(caller).unscoped() {
        return Err(ApiFault::new(
            ApiFaultKind::Forbidden,
            format!(
                "operator {} may not record deployments: needs changes.submit over every host",
                caller.operator
            ),
        ));
    }
    let parsed =
        EnvRecord::from_json(&record).map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
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
            let d: Deployment =
                decode(&key, &bytes).map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))?;
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
    let summary = deploy_summary(&app, &environment, &parsed);
    turn.put(
        key,
        encode(&Deployment {
            app,
            environment,
            record,
        }),
    );
    core.audit_host(turn, caller, "", AuditAction::Deployed, summary);
    Ok(ApiAnswer::Deploy(DeployAnswer::Recorded))
}

/// A recorded deploy as its audit record says it.
fn deploy_summary(app: &str, environment: &str, parsed: &EnvRecord) -> String {
    match parsed.history.last() {
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
    }
}

#[cfg(test)]
mod tests {

    use vigie_deployer::{parse_environment, plan, settle, Target};
    use vigie_wire::deploy::{DeployAnswer, DeployCall};
    use vigie_wire::tower::{ApiAnswer, ApiFaultKind, Caller, Origin, Scope};

    use crate::core::state::Core;
    use crate::core::turn::Turn;

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

    /// A deployments call as the referee's loop answers it.
    fn deploy(
        tower: &mut Core,
        who: &Caller,
        call: DeployCall,
        db: &crate::shell::mem_store::MemStore,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, vigie_wire::tower::ApiFault> {
        let call = vigie_wire::tower::ApiCall::Deploy(call);
        crate::shell::history::api(tower, who, call, db, std::time::Instant::now(), turn)
    }

    /// Every deployment `who` may list.
    fn listed(
        tower: &mut Core,
        who: &Caller,
        db: &crate::shell::mem_store::MemStore,
        turn: &mut Turn,
    ) -> Vec<vigie_wire::deploy::Deployment> {
        match deploy(tower, who, DeployCall::List, db, turn).unwrap() {
            ApiAnswer::Deploy(DeployAnswer::Deployments(all)) => all,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_stale_deploy_never_overwrites_a_record_and_a_record_must_be_its_environments() {
        let s = crate::shell::test_store::store();
        let mut tower = s.tower();
        let db = &s.db;
        let alice = Caller::internal("alice", "op");
        let mut turn = Turn::started();

        let r1 = record("v1", None);
        deploy(&mut tower, &alice, call(&r1, 0, "shop"), db, &mut turn).unwrap();
        // Two deploys planned on the same state: the second is refused.
        let r2 = record("v2", Some(&r1));
        deploy(&mut tower, &alice, call(&r2, 1, "shop"), db, &mut turn).unwrap();
        let stale = record("v3", Some(&r1));
        let err = deploy(&mut tower, &alice, call(&stale, 1, "shop"), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Conflict, "{err}");
        // A record under another environment's name, or not a record at all.
        let err = deploy(&mut tower, &alice, call(&r1, 0, "other"), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Invalid, "{err}");
        let garbage = DeployCall::Record {
            app: "shop".into(),
            environment: "prod".into(),
            expected: 2,
            record: b"not a record".to_vec(),
        };
        let err = deploy(&mut tower, &alice, garbage, db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Invalid, "{err}");
        let seen = listed(&mut tower, &alice, db, &mut turn);
        assert_eq!(seen.len(), 1);
        assert_eq!(
            vigie_deployer::EnvRecord::from_json(&seen[0].record).unwrap(),
            r2
        );
    }

    #[test]
    fn records_are_per_tenant_and_each_is_audited() {
        let s = crate::shell::test_store::store();
        let mut tower = s.tower();
        let db = &s.db;
        let alice = Caller::internal("alice", "op");
        let bob = Caller::internal("bob", "op");
        let mut turn = Turn::started();
        let r1 = record("v1", None);
        deploy(&mut tower, &alice, call(&r1, 0, "shop"), db, &mut turn).unwrap();
        let r2 = record("v2", Some(&r1));
        deploy(&mut tower, &alice, call(&r2, 1, "shop"), db, &mut turn).unwrap();
        assert_eq!(listed(&mut tower, &alice, db, &mut turn).len(), 1);
        assert!(
            listed(&mut tower, &bob, db, &mut turn).is_empty(),
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

    /// Issue 18 item 7: `deployments list` follows the reader's scope. A
    /// deployment is listed to a scoped reader only if every host it names,
    /// now or in its history, is in the scope.
    #[test]
    fn a_scoped_reader_sees_only_deployments_wholly_inside_its_scope() {
        let s = crate::shell::test_store::store();
        let mut tower = s.tower();
        let db = &s.db;
        let admin = Caller::internal("alice", "op");
        let mut turn = Turn::started();
        for (host, role) in [("web-1", "web"), ("db-1", "db")] {
            let add = vigie_wire::tower::ApiCall::HostAdd {
                host: host.into(),
                labels: [("role".to_string(), role.to_string())].into(),
            };
            crate::shell::history::api(
                &mut tower,
                &admin,
                add,
                db,
                std::time::Instant::now(),
                &mut turn,
            )
            .unwrap();
        }
        // shop runs on web-1 only; crm runs on web-1 now but ran on db-1.
        deploy(
            &mut tower,
            &admin,
            call(&record("v1", None), 0, "shop"),
            db,
            &mut turn,
        )
        .unwrap();
        let mut crm = record("v1", None);
        crm.key.app = vigie_deployer::Part::parse("crm").unwrap();
        crm.history[0].changes.insert("db-1".into(), "c0".into());
        deploy(&mut tower, &admin, call(&crm, 0, "crm"), db, &mut turn).unwrap();

        let reader = |scope: &str| Caller {
            scope: Scope::Only(vec![scope.to_owned()]),
            origin: Origin::Operator {
                home: "alice".into(),
            },
            ..Caller::internal("alice", "reader")
        };
        let mut apps = |who: &Caller| -> Vec<String> {
            match deploy(&mut tower, who, DeployCall::List, db, &mut turn).unwrap() {
                ApiAnswer::Deploy(DeployAnswer::Deployments(all)) => {
                    let mut v: Vec<String> = all.into_iter().map(|d| d.app).collect();
                    v.sort();
                    v
                }
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(apps(&admin), ["crm", "shop"]);
        assert_eq!(apps(&reader("role=web")), ["shop"], "crm names db-1");
        assert_eq!(apps(&reader("web-*")), ["shop"]);
        assert!(apps(&reader("role=db")).is_empty(), "both name web-1");
        assert!(apps(&reader("nothing-*")).is_empty());
    }
}
