//! Deploy secrets (issue 19), the referee's half: `set`, `list`, `remove`
//! (verb `secrets.admin`, over every host: an environment spans hosts),
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
use vigie_wire::front::{KeyState, Verb};
use vigie_wire::secrets::{SecretInfo, SecretsAnswer, SecretsCall, MAX_SECRET_BYTES};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Origin, Scope};

use crate::core::audit::AuditAction;
use crate::core::fetched::Fetched;
use crate::core::model::rollout_key;
use crate::core::scope::Visible;
use crate::core::state::Tower;
use crate::core::turn::Turn;
use crate::core::vault::{secret_key, StoredSecret};

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

/// An environment spans hosts: its secrets need the verb over all.
fn unscoped(caller: &Caller) -> Result<(), ApiFault> {
    if Visible::of(caller).unscoped() {
        return Ok(());
    }
    Err(fault(
        ApiFaultKind::Forbidden,
        format!(
            "operator {} may not manage secrets: needs secrets.admin over every host",
            caller.operator
        ),
    ))
}

impl Tower {
    pub(crate) fn secrets_call(
        &mut self,
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
                let versions: BTreeMap<String, u32> = self
                    .secrets
                    .of_env(&tenant, &app, &environment)
                    .map(|s| (s.name.clone(), s.version))
                    .collect();
                SecretsAnswer::Versions(versions)
            }
            SecretsCall::List { app, environment } => {
                unscoped(caller)?;
                check_names(&app, &environment, None)?;
                let mut list: Vec<SecretInfo> = self
                    .secrets
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
                unscoped(caller)?;
                check_names(&app, &environment, Some(&name))?;
                let key = secret_key(&caller.tenant, &app, &environment, &name);
                if self.secrets.rows.remove(turn, &key).is_none() {
                    return Err(fault(
                        ApiFaultKind::NotFound,
                        format!("{app}/{environment} has no secret {name}"),
                    ));
                }
                let summary = format!("{app}/{environment}: secret {name} removed");
                self.audit_host(turn, caller, "", AuditAction::SecretRemoved, summary);
                SecretsAnswer::Removed
            }
            set @ SecretsCall::Set { .. } => self.secret_set(caller, set, db, turn)?,
        };
        Ok(ApiAnswer::Secrets(answer))
    }

    fn secret_set(
        &mut self,
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
        unscoped(caller)?;
        check_names(&app, &environment, Some(&name))?;
        let text = std::str::from_utf8(value.expose()).ok();
        if value.expose().len() > MAX_SECRET_BYTES || text.is_none_or(|t| t.contains('\0')) {
            return Err(fault(
                ApiFaultKind::Invalid,
                format!(
                    "a secret's value is UTF-8 text without NUL, at most {MAX_SECRET_BYTES} bytes"
                ),
            ));
        }
        let Some(vault_key) = self.secrets.key.clone() else {
            return Err(fault(
                ApiFaultKind::Unavailable,
                "this tower keeps no secrets (the referee has no --secrets-key)",
            ));
        };
        // Decided before anything is written: a restart the caller may
        // not start refuses the whole call.
        let restart = self.rotation(caller, &app, &environment, &name, db, turn)?;
        let key = secret_key(&caller.tenant, &app, &environment, &name);
        let version = self.secrets.rows.get(&key).map_or(1, |s| s.version + 1);
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
        self.secrets.rows.put(turn, key, rec);
        let summary = format!("{app}/{environment}: secret {name} set (version {version})");
        self.audit_host(turn, caller, "", AuditAction::SecretSet, summary);
        let (restart, note) = match restart {
            Rotation::Restart(deployer) => {
                let rotate = DeployCall::Verb {
                    app: app.clone(),
                    environment: environment.clone(),
                    verb: EnvVerb::Rotate { secret: name },
                    force_unlock: false,
                };
                match self.start_verb(&deployer, rotate, db, turn)? {
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
        &self,
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
        if !self.may_deploy(caller) {
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

    /// Whether the caller's own record holds `changes.submit` over every
    /// host (what starting a deploy needs).
    fn may_deploy(&self, caller: &Caller) -> bool {
        let Origin::Operator { home } = &caller.origin else {
            return true;
        };
        self.operators
            .iter()
            .find(|o| &o.tenant == home && o.name == caller.operator && !o.revoked)
            .is_some_and(|o| o.scopes(Verb::ChangesSubmit).iter().any(|s| s == "*"))
    }

    /// `spec` with every `SecretFile`'s values sealed for `hosts`' one
    /// agent; unchanged when it has none.
    pub(crate) fn seal_secrets(
        &self,
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
        let public = self.sealing_key(&caller.tenant, host).ok_or_else(|| {
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
                    let (value, version) =
                        self.open_secret(&caller.tenant, environment, &var.name)?;
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
        &self,
        tenant: &str,
        environment: &str,
        name: &str,
    ) -> Result<(vigie_wire::secrets::Secret, u32), ApiFault> {
        let (app, env) = environment.split_once('/').unwrap_or((environment, ""));
        let rec = self
            .secrets
            .rows
            .get(&secret_key(tenant, app, env, name))
            .ok_or_else(|| {
                fault(
                    ApiFaultKind::NotFound,
                    format!("secret {name} of {environment} is not set"),
                )
            })?;
        let key = self
            .secrets
            .key
            .as_ref()
            .ok_or_else(|| fault(ApiFaultKind::Unavailable, "this tower keeps no secrets"))?;
        let value = rec
            .open(key)
            .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))?;
        Ok((value, rec.version))
    }

    /// The X25519 key `host`'s agent opens sealed values with: a local
    /// plug's from the setup, else its accepted agent key.
    fn sealing_key(&self, tenant: &str, host: &str) -> Option<[u8; 32]> {
        if let Some(k) = self.secrets.host_keys.get(host) {
            return Some(*k);
        }
        self.keys
            .values()
            .filter(|k| k.host == host && k.tenant == tenant && k.state == KeyState::Accepted)
            .find_map(|k| vigie_wire::secrets::decode_public(&k.public))
    }
}

enum Rotation {
    Restart(Caller),
    Note(String),
    Unused,
}
