//! `vigie secrets set|list|remove APP/ENV [NAME]`: an environment's deploy
//! secrets. A value is read from stdin, never from the command line (it
//! would be in `ps` and the shell's history); what is printed of a secret
//! is its name, version, when and by whom.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use clap::Subcommand;
use vigie_client::calls::secrets;
use vigie_wire::secrets::{Secret, MAX_SECRET_BYTES};

use super::conn::Conn;
use super::out::{self, say, Format, Table};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
    #[command(flatten)]
    pub(super) conn: Conn,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Set (or rotate) a secret; its value is read from stdin. In a
    /// deployed environment, the running replicas that read it are
    /// restarted in place with the new value (a rollout, no fetch).
    Set {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        env: String,
        /// The secret's name, as `environment.yml` names it (`{ secret: NAME }`).
        name: String,
    },
    /// The environment's secrets: names, versions, when and by whom.
    List {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        env: String,
    },
    /// Remove a secret (a deploy that reads it is then refused).
    Remove {
        /// APP/ENVIRONMENT, e.g. shop/prod.
        env: String,
        /// The secret's name.
        name: String,
    },
}

fn app_env(text: &str) -> anyhow::Result<(String, String)> {
    match text.split_once('/') {
        Some((app, env)) if !app.is_empty() && !env.is_empty() => Ok((app.into(), env.into())),
        _ => Err(super::failure::Failure::error(
            super::failure::Cause::Usage,
            format!("{text:?}: write APP/ENVIRONMENT, e.g. shop/prod"),
        )),
    }
}

/// The value on stdin, without the one newline `echo` or a terminal adds.
fn read_value() -> anyhow::Result<Secret> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        out::warn("type the secret's value, then Enter and Ctrl-D");
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(MAX_SECRET_BYTES as u64 + 2)
        .read_to_end(&mut bytes)?;
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(super::failure::Failure::error(
            super::failure::Cause::Data,
            "no value on stdin",
        ));
    }
    Ok(Secret::new(bytes))
}

/// `env` with its secrets' versions as the tower has them (read only
/// when it names secrets: `secrets.admin` is needed then).
pub(super) fn pinned(
    client: &mut super::conn::Tower,
    env: &vigie_deployer::Environment,
) -> Result<vigie_deployer::Environment, vigie_deployer::DeployError> {
    if env.secret_names().is_empty() {
        return Ok(env.clone());
    }
    let call = secrets::List {
        app: env.key.app.to_string(),
        environment: env.key.environment.to_string(),
    };
    let versions = match client.ask(call) {
        Ok(list) => list.into_iter().map(|s| (s.name, s.version)).collect(),
        Err(e) => {
            out::warn(&format!("vigie deploy: the secrets' versions: {e}"));
            Default::default()
        }
    };
    env.pin_secrets(&versions)
}

pub fn run(a: Args, format: Format) -> anyhow::Result<ExitCode> {
    let json = format == Format::Json;
    match a.action {
        Action::Set { env, name } => {
            let (app, environment) = app_env(&env)?;
            let value = read_value()?;
            let call = secrets::Set {
                app,
                environment,
                name: name.clone(),
                value,
            };
            let set = a.conn.client()?.ask(call)?;
            if json {
                out::json(&serde_json::json!({
                    "name": name, "version": set.version,
                    "restart": set.restart, "note": set.note,
                }))?;
            } else {
                say!("{env}: secret {name} set (version {})", set.version);
                if let Some(id) = &set.restart {
                    say!("restarting the replicas that read it (rollout {id}): follow with `vigie deployments watch {env}`");
                }
                if let Some(note) = &set.note {
                    say!("{note}");
                }
            }
        }
        Action::List { env } => {
            let (app, environment) = app_env(&env)?;
            let list = a.conn.client()?.ask(secrets::List { app, environment })?;
            if json {
                for s in &list {
                    out::json(&serde_json::json!({
                        "name": s.name, "version": s.version,
                        "set_at": vigie_json::rfc3339(s.set_ms), "set_by": s.set_by,
                    }))?;
                }
            } else if list.is_empty() {
                out::warn(&format!("{env} has no secrets"));
            } else {
                let mut t = Table::new(&["NAME", "VERSION", "SET", "BY"]);
                for s in &list {
                    t.row(vec![
                        s.name.clone(),
                        s.version.to_string(),
                        vigie_json::rfc3339(s.set_ms),
                        s.set_by.clone(),
                    ]);
                }
                t.print()?;
            }
        }
        Action::Remove { env, name } => {
            let (app, environment) = app_env(&env)?;
            let call = secrets::Remove {
                app,
                environment,
                name: name.clone(),
            };
            a.conn.client()?.ask(call)?;
            if json {
                out::json(&serde_json::json!({ "name": name, "removed": true }))?;
            } else {
                say!("{env}: secret {name} removed");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
