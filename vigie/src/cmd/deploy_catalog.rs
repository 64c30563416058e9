//! `vigie deploy APP/ENV --version V`: deploys the environment the
//! application catalog's version holds (`vigie apps add`, versions
//! immutable). The tower takes the text from its catalog, never from the
//! CLI; `--plan` plans the same text here, from the inventory.

use std::process::ExitCode;

use vigie_client::calls::{self, catalog};
use vigie_deployer::{parse_environment, EnvKey, Part};

use super::conn::{Conn, Tower};
use super::out::{esay, say, Format};
use crate::runtime::EXIT_CONFIG;

/// What `vigie deploy APP/ENV --version V` comes to: a deploy started
/// and followed (its exit code), or `--plan`'s environment, which
/// `deploy.rs` plans like a file's.
pub enum Outcome {
    Done(ExitCode),
    Plan(Box<vigie_deployer::Environment>, Tower),
}

/// How the deploy goes, as `vigie deploy`'s flags say.
pub struct Flags {
    pub plan: bool,
    pub parallel: u32,
    pub from_maintenance: bool,
    pub force_unlock: bool,
}

/// `APP/ENV` as the deployer names them.
fn env_key(text: &str) -> Result<EnvKey, String> {
    let (app, env) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?}: with --version, give APP/ENV (e.g. shop/prod)"))?;
    Ok(EnvKey {
        app: Part::parse(app)?,
        environment: Part::parse(env)?,
    })
}

pub fn deploy(
    what: &str,
    version: String,
    f: Flags,
    conn: Conn,
    format: Format,
) -> anyhow::Result<Outcome> {
    let key = match env_key(what) {
        Ok(key) => key,
        Err(e) => {
            esay!("vigie deploy: {e}");
            return Ok(Outcome::Done(ExitCode::from(EXIT_CONFIG)));
        }
    };
    let mut client = conn.client()?;
    if f.plan {
        let versions = client.ask(catalog::App {
            name: key.app.to_string(),
        })?;
        let text = versions
            .iter()
            .find(|a| a.spec.version == version)
            .and_then(|a| a.spec.environments.get(key.environment.as_str()));
        let Some(text) = text else {
            esay!(
                "vigie deploy: the catalog has no {key} in version {version} of {}",
                key.app
            );
            return Ok(Outcome::Done(ExitCode::from(EXIT_CONFIG)));
        };
        let env = parse_environment(&format!("{} {version}", key.app), text)?;
        return Ok(Outcome::Plan(Box::new(env), client));
    }
    let stop = super::rollout::interrupt_flag()?;
    let id = client.ask(calls::DeployStartVersion {
        app: key.app.to_string(),
        environment: key.environment.to_string(),
        version: version.clone(),
        parallel: f.parallel,
        from_maintenance: f.from_maintenance,
        force_unlock: f.force_unlock,
    })?;
    if format != Format::Json {
        say!(
            "deploy of {key} version {version} (catalog) started in the tower (rollout {id}): Ctrl-C detaches, the deploy goes on"
        );
    }
    super::rollout::follow(&mut client, &key, Some(&id), format, &stop).map(Outcome::Done)
}
