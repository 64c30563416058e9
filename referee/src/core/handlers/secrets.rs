//! Deploy secrets (issue 19), the referee's half: `set`, `list`, `remove`
//! (verb `secrets.admin`, over the environment by name — `@shop/prod`,
//! `@shop/*` — or over everything: an environment spans hosts, a host
//! scope reaches none; a refusal is audited),
//! each value encrypted at rest (`vault.rs`) under
//! `secret/<tenant>/<app>/<env>/<name>`, audited by name and version,
//! never by value. A change holding a `SecretFile` step gets its values
//! sealed here, at submission, for its one host's agent key — only for
//! the tower's deploy daemon, and only its own environment's secrets —
//! so no operator's change can ask for a secret to be written anywhere.
//! Setting a secret an environment's last deploy reads starts a verb
//! rollout, `rotate`: the running replicas that read it restarted in
//! place, one at a time, with the new value (no fetch), audited
//! `deploy_verb` like any verb.

use std::collections::BTreeMap;

use vigie_wire::change::{Action, ChangeSpec};
use vigie_wire::deploy::{DeployAnswer, DeployCall, EnvVerb, RolloutEnd};
use vigie_wire::secrets::{SecretInfo, SecretsAnswer, SecretsCall, MAX_SECRET_BYTES};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Origin, Scope};

use super::app_scope::refuse_scope;
use crate::core::audit::AuditAction;
use crate::core::fetched::Fetched;
use crate::core::model::rollout_key;
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::Turn;
use crate::core::vault::{secret_key, OpenError, StoredSecret};

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

fn check_names(app: &str, env: &str, name: Option<&str>) -> Result<(), ApiFault> {
    let invalid = |e: String| fault(ApiFaultKind::Invalid, e);
    vigie_deployer::Part::parse(app).map_err(invalid)?;
    vigie_deployer::Part::parse(env).map_err(invalid)?;
    if let Some(name) = name {
        vigie_wire::secrets::check_name(name).map_err(invalid)?;
    }
    Ok(())
}

/// An environment's secrets need `secrets.admin` over it by name
/// (`@shop/prod`, `@shop/*`, `@app=shop`) or over everything: a host
/// scope reaches none (an environment spans hosts). Refused, audited in
/// the caller's tenant, like a deploy's.
fn check_reach(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    app: &str,
    env: &str,
    what: &str,
) -> Result<(), ApiFault> {
    if Visible::of(caller).env(app, env) {
        return Ok(());
    }
    let what = format!("{what} the secrets of {app}/{env}");
    let needs = format!("secrets.admin@{app}/{env} (or @{app}/*, or over everything)");
    Err(refuse_scope(core, turn, caller, &what, &needs))
}

pub(crate) fn secrets_call(
    core: &mut Core,
    caller: &Caller,
    call: SecretsCall,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let answer = match call {
        SecretsCall::Versions {
            tenant,
            app,
            environment,
        } => {
            if caller.origin != Origin::Tower {
                return Err(fault(
                    ApiFaultKind::Forbidden,
                    "only the tower's deploy daemon makes this call",
                ));
            }
            let versions: BTreeMap<String, u32> = core
                .secrets()
                .of_env(&tenant, &app, &environment)
                .map(|s| (s.name.clone(), s.version))
                .collect();
            SecretsAnswer::Versions(versions)
        }
        SecretsCall::List { app, environment } => {
            check_reach(core, turn, caller, &app, &environment, "list")?;
            check_names(&app, &environment, None)?;
            let mut list: Vec<SecretInfo> = core
                .secrets()
                .of_env(&caller.tenant, &app, &environment)
                .map(|s| SecretInfo {
                    name: s.name.clone(),
                    version: s.version,
                    set_ms: s.set_ms,
                    set_by: s.set_by.clone(),
                })
                .collect();
            list.sort_by(|a, b| a.name.cmp(&b.name));
            SecretsAnswer::List(list)
        }
        SecretsCall::Remove {
            app,
            environment,
            name,
        } => {
            check_reach(core, turn, caller, &app, &environment, "remove")?;
            check_names(&app, &environment, Some(&name))?;
            let key = secret_key(&caller.tenant, &app, &environment, &name);
            if core.secrets_mut().remove(turn, &key).is_none() {
                return Err(fault(
                    ApiFaultKind::NotFound,
                    format!("{app}/{environment} has no secret {name}"),
                ));
            }
            let summary = format!("{app}/{environment}: secret {name} removed");
            core.audit_host(turn, caller, "", AuditAction::SecretRemoved, summary);
            SecretsAnswer::Removed
        }
        set @ SecretsCall::Set { .. } => secret_set(core, caller, set, db, turn)?,
    };
    Ok(ApiAnswer::Secrets(answer))
}

fn secret_set(
    core: &mut Core,
    caller: &Caller,
    call: SecretsCall,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<SecretsAnswer, ApiFault> {
    let SecretsCall::Set {
        app,
        environment,
        name,
        value,
    } = call
    else {
        return Err(fault(ApiFaultKind::Invalid, "not a set call"));
    };
    check_reach(core, turn, caller, &app, &environment, "set")?;
    check_names(&app, &environment, Some(&name))?;
    let text = std::str::from_utf8(value.expose()).ok();
    if value.expose().len() > MAX_SECRET_BYTES || text.is_none_or(|t| t.contains('\0')) {
        return Err(fault(
            ApiFaultKind::Invalid,
            format!("a secret's value is UTF-8 text without NUL, at most {MAX_SECRET_BYTES} bytes"),
        ));
    }
    let Some(vault_key) = core.secrets().key().cloned() else {
        return Err(fault(
            ApiFaultKind::Unavailable,
            "this tower keeps no secrets (the referee has no --secrets-key)",
        ));
    };
    // Decided before anything is written: a restart the caller may
    // not start refuses the whole call.
    let restart = rotation(core, caller, &app, &environment, &name, db, turn)?;
    let key = secret_key(&caller.tenant, &app, &environment, &name);
    let version = core.secrets().get(&key).map_or(1, |s| s.version + 1);
    let mut rec = StoredSecret {
        tenant: caller.tenant.clone(),
        app: app.clone(),
        environment: environment.clone(),
        name: name.clone(),
        version,
        set_ms: turn.now_ms,
        set_by: caller.operator.clone(),
        nonce: Vec::new(),
        ciphertext: Vec::new(),
    };
    rec.seal_at_rest(&vault_key, &value)
        .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))?;
    core.secrets_mut().put(turn, key, rec);
    let summary = format!("{app}/{environment}: secret {name} set (version {version})");
    core.audit_host(turn, caller, "", AuditAction::SecretSet, summary);
    let (restart, note) = match restart {
        Rotation::Restart(deployer) => {
            let rotate = DeployCall::Verb {
                app: app.clone(),
                environment: environment.clone(),
                verb: EnvVerb::Rotate { secret: name },
                force_unlock: false,
            };
            match super::deploy_verbs::start_verb(core, &deployer, rotate, db, turn)? {
                DeployAnswer::Started { id } => (Some(id), None),
                _ => (None, None),
            }
        }
        Rotation::Note(note) => (None, Some(note)),
        Rotation::Unused => (None, None),
    };
    Ok(SecretsAnswer::Set {
        version,
        restart,
        note,
    })
}

/// What setting `name` does to the environment's replicas: restart
/// them (its last deploy succeeded and reads the secret), say why
/// not, or nothing (not read).
fn rotation(
    core: &Core,
    caller: &Caller,
    app: &str,
    env: &str,
    name: &str,
    db: &Fetched,
    turn: &Turn,
) -> Result<Rotation, ApiFault> {
    let key = rollout_key(&caller.tenant, app, env);
    let Some(last) = crate::core::rollouts::stored(db, turn, &key)? else {
        return Ok(Rotation::Unused);
    };
    let reads = vigie_deployer::parse_environment(&last.file, &last.text)
        .is_ok_and(|e| e.secret_names().contains(name));
    if !reads {
        return Ok(Rotation::Unused);
    }
    if matches!(last.verb, Some(EnvVerb::Undeploy { .. })) {
        return Ok(Rotation::Note(format!(
            "{app}/{env} is undeployed: its replicas read the new value from the next deploy"
        )));
    }
    match last.end {
        None => {
            return Ok(Rotation::Note(format!(
                "a deploy of {app}/{env} is running: its replicas read the new value only from the next deploy"
            )))
        }
        Some(RolloutEnd::Succeeded) => {}
        Some(_) => {
            return Ok(Rotation::Note(format!(
                "the last deploy of {app}/{env} did not succeed: its replicas read the new value from the next deploy"
            )))
        }
    }
    if !core.access().may_deploy(caller) {
        return Err(fault(
            ApiFaultKind::Forbidden,
            format!(
                "setting {name} restarts {app}/{env}: operator {} needs changes.submit over every host",
                caller.operator
            ),
        ));
    }
    let deployer = Caller {
        scope: Scope::All,
        ..caller.clone()
    };
    Ok(Rotation::Restart(deployer))
}

/// `spec` with every `SecretFile`'s values sealed for `hosts`' one
/// agent; unchanged when it has none.
pub(crate) fn seal_secrets(
    core: &Core,
    caller: &Caller,
    mut spec: ChangeSpec,
    hosts: &[String],
) -> Result<ChangeSpec, ApiFault> {
    let has = |s: &ChangeSpec| {
        s.steps
            .iter()
            .any(|st| matches!(st.action, Action::SecretFile { .. }))
    };
    if !has(&spec) {
        return Ok(spec);
    }
    let forbidden = |m: &str| fault(ApiFaultKind::Forbidden, m.to_string());
    if caller.origin != Origin::Tower {
        return Err(forbidden(
            "a secret file is written only by the tower's deploys",
        ));
    }
    let [host] = hosts else {
        return Err(fault(
            ApiFaultKind::Invalid,
            "a change with secrets targets exactly one host",
        ));
    };
    let public = sealing_key(core, &caller.tenant, host).ok_or_else(|| {
        fault(
            ApiFaultKind::Unavailable,
            format!("host {host} has no agent key to seal its secrets for"),
        )
    })?;
    for step in &mut spec.steps {
        if let Action::SecretFile {
            environment,
            secrets,
            ..
        } = &mut step.action
        {
            for var in secrets.iter_mut() {
                let (value, version) = open_secret(core, &caller.tenant, environment, &var.name)?;
                var.sealed = vigie_wire::secrets::seal(&public, &value)
                    .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))?;
                var.version = version;
            }
        }
    }
    Ok(spec)
}

/// The current value of a secret of `environment` (`app/env`).
fn open_secret(
    core: &Core,
    tenant: &str,
    environment: &str,
    name: &str,
) -> Result<(vigie_wire::secrets::Secret, u32), ApiFault> {
    let (app, env) = environment.split_once('/').unwrap_or((environment, ""));
    core.secrets()
        .open_secret(tenant, app, env, name)
        .map_err(|e| match e {
            OpenError::NotSet => fault(
                ApiFaultKind::NotFound,
                format!("secret {name} of {environment} is not set"),
            ),
            OpenError::NoKey => fault(ApiFaultKind::Unavailable, "this tower keeps no secrets"),
            OpenError::Vault(e) => fault(ApiFaultKind::Storage, e.to_string()),
        })
}

/// The X25519 key `host`'s agent opens sealed values with: a local
/// plug's from the setup, else its accepted agent key.
fn sealing_key(core: &Core, tenant: &str, host: &str) -> Option<[u8; 32]> {
    if let Some(k) = core.secrets().host_key(host) {
        return Some(k);
    }
    core.access()
        .accepted_keys(tenant, host)
        .find_map(|k| vigie_wire::secrets::decode_public(&k.public))
}

enum Rotation {
    Restart(Caller),
    Note(String),
    Unused,
}
