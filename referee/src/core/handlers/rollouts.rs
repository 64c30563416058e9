//! The deploys the tower runs, as use cases (issue 19, `core/rollouts.rs`
//! for the records' rules): a start (`Start`, or `StartVersion` from the
//! catalog), an operator following one (`Rollout`), the deploy daemon's
//! `Progress`. Each is granted by the caller's scope and audited.

use vigie_deployer::{parse_environment, MAX_ENV_FILE};
use vigie_wire::deploy::{DeployAnswer, DeployCall, Rollout, RolloutLine};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::codec::encode;
use crate::core::fetched::Fetched;
use crate::core::model::rollout_key;
use crate::core::rollouts::{fault, holder, rollout_id, stored, unlocked, Start};
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::Turn;

/// An operator following the deploys of `app/environment`: the last
/// rollout's lines, its daemon's state left out.
pub fn watch(
    core: &mut Core,
    caller: &Caller,
    app: &str,
    environment: &str,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<DeployAnswer, ApiFault> {
    // Its lines name any host of the environment: a scope
    // over the environment by name, or over every host.
    if !Visible::of(caller).env(app, environment) {
        let what = format!("follow the deploys of {app}/{environment}");
        let needs = format!("changes.read or deploy over every host, or @{app}/{environment}");
        return Err(super::app_scope::refuse_scope(
            core, turn, caller, &what, &needs,
        ));
    }
    let key = rollout_key(&caller.tenant, app, environment);
    let found = stored(db, turn, &key)?.map(|mut r| {
        r.state.clear();
        Box::new(r)
    });
    Ok(DeployAnswer::Rollout(found))
}

/// A deploy asked with its file (`Start`) or from the catalog
/// (`StartVersion`).
pub fn start_call(
    core: &mut Core,
    caller: &Caller,
    call: DeployCall,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<DeployAnswer, ApiFault> {
    let start = match call {
        DeployCall::Start {
            file,
            text,
            parallel,
            from_maintenance,
            force_unlock,
            canary,
        } => Start {
            file,
            text,
            parallel,
            from_maintenance,
            force_unlock,
            version: None,
            joined: Vec::new(),
            canary,
        },
        DeployCall::StartVersion {
            app,
            environment,
            version,
            parallel,
            from_maintenance,
            force_unlock,
        } => {
            let text =
                core.catalog()
                    .app_environment(&caller.tenant, &app, &environment, &version)?;
            Start {
                file: format!("{app} {version} (catalog)"),
                text,
                parallel,
                from_maintenance,
                force_unlock,
                version: Some(version),
                joined: Vec::new(),
                canary: 0,
            }
        }
        _ => return Err(fault(ApiFaultKind::Invalid, "not a deploy start")),
    };
    start_rollout(core, caller, start, db, turn)
}

/// The deploy daemon's record of a running rollout: its state, its
/// new lines, its end.
pub fn rollout_progress(
    core: &mut Core,
    call: DeployCall,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<DeployAnswer, ApiFault> {
    let DeployCall::Progress {
        tenant,
        app,
        environment,
        id,
        state,
        said_before,
        lines,
        end,
    } = call
    else {
        return Err(fault(ApiFaultKind::Invalid, "not a progress call"));
    };
    let key = rollout_key(&tenant, &app, &environment);
    let mut r = stored(db, turn, &key)?
        .filter(|r| r.id == id && r.end.is_none())
        .ok_or_else(|| {
            fault(
                ApiFaultKind::Conflict,
                format!("rollout {id} of {app}/{environment} is not running"),
            )
        })?;
    let now = turn.now_ms;
    r.waiting = vigie_deployer::rollout::waiting(&state);
    r.state = state;
    // Lines a retried call already brought are not said twice.
    let known = r.said.saturating_sub(said_before);
    let fresh: Vec<String> = lines
        .into_iter()
        .skip(usize::try_from(known).unwrap_or(usize::MAX))
        .collect();
    r.said += fresh.len() as u64;
    r.lines.extend(
        fresh
            .into_iter()
            .map(|text| RolloutLine { at_ms: now, text }),
    );
    let over = r.lines.len().saturating_sub(Rollout::MAX_LINES);
    r.lines.drain(..over);
    if let Some(end) = end {
        r.end = Some(end);
        r.ended_ms = Some(now);
        let summary = format!("{app}/{environment} rollout {id}: {}", end.word());
        let by = Caller::internal(&tenant, &r.operator);
        core.audit_host(turn, &by, "", AuditAction::DeployEnded, summary);
    }
    turn.put(key, encode(&r));
    Ok(DeployAnswer::Recorded)
}

/// Starts a deploy: its rollout stored under the environment's key,
/// which is also its lock (`force_unlock` takes it over, audited).
pub fn start_rollout(
    core: &mut Core,
    caller: &Caller,
    s: Start,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<DeployAnswer, ApiFault> {
    if s.text.len() > MAX_ENV_FILE || s.file.len() > 4096 {
        return Err(fault(
            ApiFaultKind::Invalid,
            "the environment file is too large",
        ));
    }
    let env = parse_environment(&s.file, &s.text)
        .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
    let (app, environment) = (env.key.app.to_string(), env.key.environment.to_string());
    // An environment is deployed by name (`deploy@shop/prod`), or by
    // whoever may run anything on every host (`changes.submit`).
    if !Visible::of(caller).env(&app, &environment) {
        let what = format!("deploy {app}/{environment}");
        let needs = format!("deploy@{app}/{environment} (or deploy@{app}/*, deploy, changes.submit over every host)");
        return Err(super::app_scope::refuse_scope(
            core, turn, caller, &what, &needs,
        ));
    }
    let key = rollout_key(&caller.tenant, &app, &environment);
    let now = turn.now_ms;
    let last = stored(db, turn, &key)?;
    let before = last.as_ref().map_or(String::new(), |r| r.id.clone());
    if let Some(held) = last.filter(|r| r.end.is_none()) {
        if !s.force_unlock {
            return Err(fault(ApiFaultKind::Conflict, holder(&held)));
        }
        let (held, summary) = unlocked(held, &caller.operator, now);
        turn.put(key.clone(), encode(&held));
        core.audit_host(turn, caller, "", AuditAction::DeployUnlocked, summary);
    }
    let id = rollout_id(&caller.tenant, &app, &environment, now, &before);
    let r = Rollout {
        id: id.clone(),
        tenant: caller.tenant.clone(),
        app: app.clone(),
        environment: environment.clone(),
        operator: caller.operator.clone(),
        started_ms: now,
        file: s.file,
        text: s.text,
        parallel: s.parallel.clamp(1, 1000),
        from_maintenance: s.from_maintenance,
        canary: s.canary,
        waiting: false,
        command: None,
        state: Vec::new(),
        lines: Vec::new(),
        said: 0,
        end: None,
        ended_ms: None,
        unlocked_by: None,
        version: s.version,
        verb: None,
    };
    turn.put(key, encode(&r));
    let of = r
        .version
        .as_ref()
        .map(|v| format!(" of version {v}"))
        .unwrap_or_default();
    let joined = if s.joined.is_empty() {
        String::new()
    } else {
        format!(" (follow: {} joined)", s.joined.join(", "))
    };
    let summary = format!("{app}/{environment}: rollout {id}{of} started{joined}");
    core.audit_host(turn, caller, "", AuditAction::DeployStarted, summary);
    Ok(DeployAnswer::Started { id })
}

#[cfg(test)]
mod tests {
    use vigie_wire::deploy::{DeployAnswer, DeployCall, RolloutEnd};
    use vigie_wire::tower::{ApiAnswer, ApiFaultKind, Caller, Origin};

    use crate::core::state::Core;
    use crate::core::turn::Turn;

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

    const ENV: &str = "app: shop\nenvironment: prod\nhosts: web-1\nservices:\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    health:\n      http: /h\n";

    fn start(force_unlock: bool) -> DeployCall {
        DeployCall::Start {
            file: "env.yml".into(),
            text: ENV.into(),
            parallel: 1,
            from_maintenance: false,
            force_unlock,
            canary: 0,
        }
    }

    fn operator(name: &str) -> Caller {
        Caller {
            origin: Origin::Operator {
                home: "acme".into(),
            },
            ..Caller::internal("acme", name)
        }
    }

    fn audits(turn: &Turn, action: &str) -> usize {
        turn.writes
            .iter()
            .filter(|(k, v)| {
                k.starts_with(b"audit/rec/")
                    && v.as_ref()
                        .is_some_and(|v| String::from_utf8_lossy(v).contains(action))
            })
            .count()
    }

    fn started(answer: Result<ApiAnswer, vigie_wire::tower::ApiFault>) -> String {
        match answer {
            Ok(ApiAnswer::Deploy(DeployAnswer::Started { id })) => id,
            other => panic!("{other:?}"),
        }
    }

    fn watch() -> DeployCall {
        DeployCall::Rollout {
            app: "shop".into(),
            environment: "prod".into(),
        }
    }

    fn progress(id: &str, said_before: u64, end: Option<RolloutEnd>) -> DeployCall {
        DeployCall::Progress {
            tenant: "acme".into(),
            app: "shop".into(),
            environment: "prod".into(),
            id: id.into(),
            state: b"{}".to_vec(),
            said_before,
            lines: vec!["hello".into()],
            end,
        }
    }

    fn verb(force_unlock: bool) -> DeployCall {
        DeployCall::Verb {
            app: "shop".into(),
            environment: "prod".into(),
            verb: vigie_wire::deploy::EnvVerb::Rollback,
            force_unlock,
        }
    }

    /// Issue 19: a verb takes the deploy's lock — refused while a deploy
    /// runs, naming who holds it; run from the last deploy's file once it
    /// ended; audited `deploy_verb`; one of an environment never deployed
    /// by the tower is refused.
    #[test]
    fn a_verb_takes_the_deploys_lock_and_is_audited() {
        let s = crate::shell::test_store::store();
        let mut tower = s.tower();
        let db = &s.db;
        let mut turn = Turn::default();
        let alice = operator("alice");
        let err = deploy(&mut tower, &alice, verb(false), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::NotFound, "{err}");
        let first = started(deploy(&mut tower, &alice, start(false), db, &mut turn));
        let bob = operator("bob");
        let err = deploy(&mut tower, &bob, verb(false), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Conflict);
        assert!(err.message.contains(&first), "{err}");
        let daemon = Caller::internal(crate::TOWER_TENANT, "deployd");
        let end = Some(RolloutEnd::Succeeded);
        deploy(&mut tower, &daemon, progress(&first, 0, end), db, &mut turn).unwrap();
        started(deploy(&mut tower, &bob, verb(false), db, &mut turn));
        assert_eq!(audits(&turn, "deploy_verb"), 1);
        match deploy(&mut tower, &daemon, DeployCall::Rollouts, db, &mut turn) {
            Ok(ApiAnswer::Deploy(DeployAnswer::Rollouts(open))) => {
                assert_eq!(open.len(), 1);
                assert_eq!(open[0].verb, Some(vigie_wire::deploy::EnvVerb::Rollback));
                assert_eq!(open[0].text, ENV, "the last deploy's file");
                assert_eq!(open[0].operator, "bob");
            }
            other => panic!("{other:?}"),
        }
        // And a deploy now waits for the verb.
        let err = deploy(&mut tower, &alice, start(false), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Conflict);
    }

    /// Issue 19: two deploys of one environment at once — the second is
    /// refused, naming who holds it and since when; `--force-unlock`
    /// takes it over, audited, and the first one's daemon is refused.
    #[test]
    fn one_deploy_at_a_time_per_environment_and_an_audited_force_unlock() {
        let s = crate::shell::test_store::store();
        let mut tower = s.tower();
        let db = &s.db;
        let mut turn = Turn::started();
        let alice = operator("alice");
        let first = started(deploy(&mut tower, &alice, start(false), db, &mut turn));
        let bob = operator("bob");
        let err = deploy(&mut tower, &bob, start(false), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Conflict);
        assert!(
            err.message.contains("by alice since 20") && err.message.contains(&first),
            "{err}"
        );
        let second = started(deploy(&mut tower, &bob, start(true), db, &mut turn));
        assert_ne!(first, second);
        assert_eq!(audits(&turn, "deploy_unlocked"), 1);
        let daemon = Caller::internal(crate::TOWER_TENANT, "deployd");
        let err = deploy(
            &mut tower,
            &daemon,
            progress(&first, 0, None),
            db,
            &mut turn,
        )
        .unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Conflict, "the unlocked one stops");
        // A call retried after a lost answer does not say its lines twice.
        for _ in 0..2 {
            deploy(
                &mut tower,
                &daemon,
                progress(&second, 0, None),
                db,
                &mut turn,
            )
            .unwrap();
        }
        match deploy(&mut tower, &alice, watch(), db, &mut turn) {
            Ok(ApiAnswer::Deploy(DeployAnswer::Rollout(Some(r)))) => {
                assert_eq!((r.said, r.lines.len()), (1, 1), "{r:?}");
                assert!(r.state.is_empty(), "the daemon's state is its own");
            }
            other => panic!("{other:?}"),
        }
        let end = Some(RolloutEnd::Succeeded);
        deploy(
            &mut tower,
            &daemon,
            progress(&second, 1, end),
            db,
            &mut turn,
        )
        .unwrap();
        // Ended: the environment is free again.
        started(deploy(&mut tower, &alice, start(false), db, &mut turn));
    }

    #[test]
    fn a_scoped_reader_and_an_operator_posing_as_the_daemon_are_refused() {
        let s = crate::shell::test_store::store();
        let mut tower = s.tower();
        let db = &s.db;
        let mut turn = Turn::started();
        let alice = operator("alice");
        let id = started(deploy(&mut tower, &alice, start(false), db, &mut turn));
        // A reader scoped to some hosts does not follow a deploy whose
        // lines name the others, nor start one.
        let scoped = Caller {
            scope: vigie_wire::tower::Scope::Only(vec!["web-1".into()]),
            ..operator("carol")
        };
        for call in [watch(), start(true)] {
            let err = deploy(&mut tower, &scoped, call, db, &mut turn).unwrap_err();
            assert_eq!(err.kind, ApiFaultKind::Forbidden);
        }
        for call in [DeployCall::Rollouts, progress(&id, 0, None)] {
            let err = deploy(&mut tower, &alice, call, db, &mut turn).unwrap_err();
            assert_eq!(err.kind, ApiFaultKind::Forbidden);
        }
    }

    /// Issue 25 item 2: `deploy@shop/staging` does not deploy shop/prod
    /// (refused, audited), `deploy@shop/prod` and `deploy@shop/*` do and
    /// follow it; a scope over the hosts alone does not name it.
    #[test]
    fn a_deploy_scope_names_the_environments_it_deploys_and_follows() {
        let s = crate::shell::test_store::store();
        let mut tower = s.tower();
        let db = &s.db;
        let mut turn = Turn::default();
        let scoped = |name: &str, scope: &str| Caller {
            scope: vigie_wire::tower::Scope::Only(vec![scope.into()]),
            ..operator(name)
        };
        let staging = scoped("stan", "shop/staging");
        for call in [start(false), watch()] {
            let err = deploy(&mut tower, &staging, call, db, &mut turn).unwrap_err();
            assert_eq!(err.kind, ApiFaultKind::Forbidden);
            assert!(err.message.contains("shop/prod"), "{err}");
        }
        assert_eq!(audits(&turn, "operator_refused"), 2, "each refusal audited");
        let prod = scoped("pat", "shop/prod");
        started(deploy(&mut tower, &prod, start(false), db, &mut turn));
        let every = scoped("eve", "app=shop");
        assert!(deploy(&mut tower, &every, watch(), db, &mut turn).is_ok());
        let hosts = scoped("hal", "web-*");
        let err = deploy(&mut tower, &hosts, watch(), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Forbidden);
    }
}
