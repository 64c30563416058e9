//! An operator's word to a rollout that waits after its canary
//! (`vigie deployments continue|abort APP/ENV`): granted and audited like
//! a deploy of the environment (`deploy_commanded`), and
//! refused unless the environment's rollout runs and waits — the deploy
//! daemon then reads it from the rollout at its next poll, so a word
//! given once is carried out once, whichever daemon resumes the rollout.

use vigie_wire::deploy::{DeployAnswer, DeployCall};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::codec::encode;
use crate::core::fetched::Fetched;
use crate::core::model::rollout_key;
use crate::core::rollouts::stored_rollout;
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::Turn;

/// An operator's `continue` or `abort` to a rollout that waits.
pub fn rollout_command(
    core: &mut Core,
    caller: &Caller,
    call: DeployCall,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<DeployAnswer, ApiFault> {
    let DeployCall::Command {
        app,
        environment,
        command,
    } = call
    else {
        return Err(ApiFault::new(ApiFaultKind::Invalid, "not a command"));
    };
    if !Visible::of(caller).env(&app, &environment) {
        return Err(ApiFault::new(
            ApiFaultKind::Forbidden,
            format!(
                "operator {} may not {} a deploy of {app}/{environment}: needs deploy@{app}/{environment} (or deploy@{app}/*, deploy, changes.submit over every host)",
                caller.operator,
                command.word()
            ),
        ));
    }
    let key = rollout_key(&caller.tenant, &app, &environment);
    let running = stored_rollout(db, turn, &key)?.filter(|r| r.end.is_none());
    let Some(mut r) = running else {
        return Err(ApiFault::new(
            ApiFaultKind::NotFound,
            format!("no deploy of {app}/{environment} is running"),
        ));
    };
    if !r.waiting || r.command.is_some() {
        let why = match &r.command {
            Some((c, by)) => format!("{by} already said {}", c.word()),
            None if r.canary == 0 => "it has no canary".into(),
            None => "it has not deployed its canary yet".into(),
        };
        return Err(ApiFault::new(
            ApiFaultKind::Conflict,
            format!(
                "the deploy of {app}/{environment} (rollout {}) is not waiting: {why}",
                r.id
            ),
        ));
    }
    r.command = Some((command, caller.operator.clone()));
    let summary = format!(
        "{app}/{environment}: rollout {} told {}",
        r.id,
        command.word()
    );
    turn.put(key, encode(&r));
    core.audit_host(turn, caller, "", AuditAction::DeployCommanded, summary);
    Ok(DeployAnswer::Recorded)
}

#[cfg(test)]
mod tests {
    use vigie_deployer::rollout::{Options, Phase, State};
    use vigie_wire::deploy::{DeployAnswer, DeployCall, RolloutCommand};
    use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind, Caller, Origin, Scope};

    use crate::core::state::Core;
    use crate::core::turn::Turn;

    const ENV: &str = "app: shop\nenvironment: prod\nhosts: web-*\nservices:\n  web:\n    repository: /r\n    revision: v2\n    start: run\n    health:\n      http: /h\n";

    fn call(
        tower: &mut Core,
        who: &Caller,
        call: DeployCall,
        db: &crate::shell::mem_store::MemStore,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        crate::shell::history::api(
            tower,
            who,
            ApiCall::Deploy(call),
            db,
            std::time::Instant::now(),
            turn,
        )
    }

    fn operator(name: &str) -> Caller {
        Caller {
            origin: Origin::Operator {
                home: "acme".into(),
            },
            ..Caller::internal("acme", name)
        }
    }

    fn command(c: RolloutCommand) -> DeployCall {
        DeployCall::Command {
            app: "shop".into(),
            environment: "prod".into(),
            command: c,
        }
    }

    /// The daemon's record of rollout `id` in `phase`.
    fn progress(id: &str, phase: Phase) -> DeployCall {
        let state = State {
            token: id.into(),
            options: Options {
                parallel: 1,
                from_maintenance: false,
                operator: "alice".into(),
                started_ms: 0,
                canary: 1,
                version: None,
            },
            facts: None,
            phase,
            sent: Vec::new(),
            results: Default::default(),
            went: false,
            schema_ahead: false,
            in_maintenance: Vec::new(),
            keys: 1,
        };
        DeployCall::Progress {
            tenant: "acme".into(),
            app: "shop".into(),
            environment: "prod".into(),
            id: id.into(),
            state: serde_json::to_vec(&state).unwrap(),
            said_before: 0,
            lines: Vec::new(),
            end: None,
        }
    }

    fn audits(turn: &Turn) -> usize {
        turn.writes
            .iter()
            .filter(|(k, v)| {
                k.starts_with(b"audit/rec/")
                    && v.as_ref()
                        .is_some_and(|v| String::from_utf8_lossy(v).contains("deploy_commanded"))
            })
            .count()
    }

    /// Only a rollout that waits after its canary takes a word, once,
    /// from an operator who may deploy; the word is audited and the
    /// daemon finds it in the rollout.
    #[test]
    fn continue_is_taken_only_while_the_canary_waits_and_only_from_a_deployer() {
        let s = crate::shell::test_store::store();
        let mut tower = s.tower();
        let (db, mut turn) = (&s.db, Turn::default());
        let alice = operator("alice");
        let abort = command(RolloutCommand::Abort);
        let err = call(&mut tower, &alice, abort.clone(), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::NotFound, "nothing runs: {err}");
        let start = DeployCall::Start {
            file: "env.yml".into(),
            text: ENV.into(),
            parallel: 1,
            from_maintenance: false,
            force_unlock: false,
            canary: 1,
        };
        let Ok(ApiAnswer::Deploy(DeployAnswer::Started { id })) =
            call(&mut tower, &alice, start, db, &mut turn)
        else {
            panic!("not started");
        };
        let daemon = Caller::internal(crate::TOWER_TENANT, "deployd");
        call(
            &mut tower,
            &daemon,
            progress(&id, Phase::Wave(0)),
            db,
            &mut turn,
        )
        .unwrap();
        let err = call(&mut tower, &alice, abort.clone(), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Conflict);
        assert!(err.message.contains("not deployed its canary yet"), "{err}");
        call(
            &mut tower,
            &daemon,
            progress(&id, Phase::Wait(1)),
            db,
            &mut turn,
        )
        .unwrap();
        // A reader scoped to some hosts may not move a deploy of all.
        let scoped = Caller {
            scope: Scope::Only(vec!["web-1".into()]),
            ..operator("carol")
        };
        let err = call(&mut tower, &scoped, abort.clone(), db, &mut turn).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Forbidden);
        assert_eq!(audits(&turn), 0);
        let go = command(RolloutCommand::Continue);
        call(&mut tower, &alice, go, db, &mut turn).unwrap();
        assert_eq!(audits(&turn), 1);
        let err = call(&mut tower, &operator("bob"), abort, db, &mut turn).unwrap_err();
        assert!(err.message.contains("alice already said continue"), "{err}");
        let Ok(ApiAnswer::Deploy(DeployAnswer::Rollouts(open))) =
            call(&mut tower, &daemon, DeployCall::Rollouts, db, &mut turn)
        else {
            panic!("no rollouts");
        };
        assert_eq!(
            open[0].command,
            Some((RolloutCommand::Continue, "alice".into()))
        );
    }
}
