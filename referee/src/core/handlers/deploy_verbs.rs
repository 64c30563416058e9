//! Verbs on a deployed environment run by the tower (issue 19: `undeploy`,
//! `stop`/`start`/`restart`, `rollback`, `maintenance on|off`, `clean`):
//! each is a rollout like a deploy — stored under the environment's
//! rollout key, so it takes the same lock (refused while a deploy or
//! another verb runs, naming who holds it; `force_unlock` audited), needs
//! the same grant as a deploy of the environment, and is carried out
//! by the deploy daemon, which records each phase before it acts. A verb
//! works from the environment file of the environment's last rollout
//! (the spec its instances were made from), carried over.

use vigie_wire::deploy::{DeployAnswer, DeployCall, EnvVerb, Rollout};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::codec::encode;
use crate::core::fetched::Fetched;
use crate::core::model::rollout_key;
use crate::core::rollouts::{fault, holder, rollout_id, stored, unlocked};
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::Turn;

/// An operator's verb, as asked.
pub(crate) struct Asked {
    pub app: String,
    pub environment: String,
    pub verb: EnvVerb,
    pub force_unlock: bool,
}

/// Why a verb is refused before anything runs (pure).
pub(crate) fn refusal(asked: &Asked) -> Option<String> {
    if let EnvVerb::Undeploy {
        drop_data: Some(typed),
    } = &asked.verb
    {
        let name = format!("{}/{}", asked.app, asked.environment);
        if *typed != name {
            return Some(format!(
                "undeploy --drop-data of {name}: the name typed again ({typed:?}) is not {name:?}; nothing was touched"
            ));
        }
    }
    None
}

/// Starts the verb of a `DeployCall::Verb`.
pub fn start_verb(
    core: &mut Core,
    caller: &Caller,
    call: DeployCall,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<DeployAnswer, ApiFault> {
    let DeployCall::Verb {
        app,
        environment,
        verb,
        force_unlock,
    } = call
    else {
        return Err(fault(ApiFaultKind::Invalid, "not a verb call"));
    };
    let asked = Asked {
        app,
        environment,
        verb,
        force_unlock,
    };
    let word = asked.verb.word();
    let (app, environment) = (asked.app.clone(), asked.environment.clone());
    // The same grant as a deploy of the environment: by name
    // (`deploy@shop/prod`), or over every host.
    if !Visible::of(caller).env(&app, &environment) {
        let why = format!(
            "operator {} may not {word} {app}/{environment}: needs deploy@{app}/{environment} (or deploy@{app}/*, deploy, changes.submit over every host)",
            caller.operator
        );
        core.audit_host(
            turn,
            caller,
            "",
            AuditAction::DeployVerb,
            format!("refused: {why}"),
        );
        return Err(fault(ApiFaultKind::Forbidden, why));
    }
    if let Some(why) = refusal(&asked) {
        return Err(fault(ApiFaultKind::Invalid, why));
    }
    let key = rollout_key(&caller.tenant, &app, &environment);
    let now = turn.now_ms;
    let Some(last) = stored(db, turn, &key)? else {
        return Err(fault(
            ApiFaultKind::NotFound,
            format!("{app}/{environment} was never deployed by the tower: nothing to {word}"),
        ));
    };
    if last.end.is_none() {
        if !asked.force_unlock {
            return Err(fault(ApiFaultKind::Conflict, holder(&last)));
        }
        let (held, summary) = unlocked(last.clone(), &caller.operator, now);
        turn.put(key.clone(), encode(&held));
        core.audit_host(turn, caller, "", AuditAction::DeployUnlocked, summary);
    }
    let id = rollout_id(&caller.tenant, &app, &environment, now, &last.id);
    let r = verb_rollout(caller, asked, last, id.clone(), now);
    turn.put(key, encode(&r));
    let summary = format!("{app}/{environment}: {word} (rollout {id})");
    core.audit_host(turn, caller, "", AuditAction::DeployVerb, summary);
    Ok(DeployAnswer::Started { id })
}

/// The rollout of a verb: the environment file of `last`, carried over.
fn verb_rollout(caller: &Caller, asked: Asked, last: Rollout, id: String, now: u64) -> Rollout {
    Rollout {
        id,
        tenant: caller.tenant.clone(),
        app: asked.app,
        environment: asked.environment,
        operator: caller.operator.clone(),
        started_ms: now,
        file: last.file,
        text: last.text,
        parallel: 1,
        from_maintenance: false,
        state: Vec::new(),
        lines: Vec::new(),
        said: 0,
        end: None,
        ended_ms: None,
        unlocked_by: None,
        // The version its instances came from, where the verb keeps them.
        version: match asked.verb {
            EnvVerb::Rollback | EnvVerb::Undeploy { .. } => None,
            _ => last.version,
        },
        verb: Some(asked.verb),
        canary: 0,
        waiting: false,
        command: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(verb: EnvVerb) -> Asked {
        Asked {
            app: "shop".into(),
            environment: "prod".into(),
            verb,
            force_unlock: false,
        }
    }

    /// Dropping the data takes the environment's name typed again: a
    /// slip (another environment's name, a typo) is refused.
    #[test]
    fn drop_data_needs_the_environment_name_typed_again() {
        let typed = |t: &str| {
            refusal(&asked(EnvVerb::Undeploy {
                drop_data: Some(t.into()),
            }))
        };
        assert!(typed("shop/prod").is_none());
        assert!(typed("shop/staging").is_some());
        assert!(typed("shop/prod ").is_some());
        assert!(refusal(&asked(EnvVerb::Undeploy { drop_data: None })).is_none());
    }
}
