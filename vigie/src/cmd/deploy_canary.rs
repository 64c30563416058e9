//! The operator's side of a canary (`vigie deploy --canary N`): a deploy
//! followed until it waits says so and how to go on, exit 0 (the deploy
//! waits in the tower, not in the terminal); `vigie deployments
//! continue|abort APP/ENV` tells it (refused unless it waits) and
//! follows it to its end; `deployments list|show` say what runs (a
//! deploy, a verb) and that it waits.

use std::process::ExitCode;

use vigie_client::{calls, ClientError};
use vigie_deployer::EnvKey;
use vigie_wire::deploy::{Rollout, RolloutCommand, RolloutEnd};
use vigie_wire::tower::ApiFaultKind;

use super::conn::Tower;
use super::out::{say, sayio, Format};

/// What a follower prints when the rollout waits after its canary.
pub fn waits(r: &Rollout, format: Format) -> anyhow::Result<ExitCode> {
    let name = format!("{}/{}", r.app, r.environment);
    if format == Format::Json {
        super::out::json(&serde_json::json!({
            "rollout": r.id,
            "name": name,
            "operator": r.operator,
            "waiting": true,
            "lines": r.lines.iter().map(|l| &l.text).collect::<Vec<_>>(),
        }))?;
    } else {
        sayio!(
            "the deploy of {name} waits in the tower after its canary: `vigie deployments continue {name}` or `vigie deployments abort {name}`"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends `continue` or `abort`; returns the end its following expects
/// (`deployments.rs` follows it: an abort's end is rolled back).
pub fn send(
    client: &mut Tower,
    key: &EnvKey,
    command: RolloutCommand,
    format: Format,
) -> anyhow::Result<RolloutEnd> {
    client.ask(calls::DeployCommand {
        app: key.app.to_string(),
        environment: key.environment.to_string(),
        command,
    })?;
    if format != Format::Json {
        say!(
            "{} of {key} sent to the tower: Ctrl-C detaches, the deploy goes on",
            command.word()
        );
    }
    Ok(match command {
        RolloutCommand::Continue => RolloutEnd::Succeeded,
        RolloutCommand::Abort => RolloutEnd::RolledBack,
    })
}

/// The environment's rollout, whether it runs or ended; `Err(None)`
/// when the caller's grants do not reach it (a scope over some hosts:
/// its lines name every host of the environment), which is not asked
/// again for the other environments of a list.
pub fn rollout_of(
    client: &mut Tower,
    key: &EnvKey,
) -> Result<Option<Rollout>, Option<anyhow::Error>> {
    let call = calls::DeployRollout {
        app: key.app.to_string(),
        environment: key.environment.to_string(),
    };
    match client.ask_raw(call) {
        Ok(r) => Ok(r.map(|r| *r)),
        Err(ClientError::Refused(f)) if f.kind == ApiFaultKind::Forbidden => Err(None),
        Err(e) => Err(Some(client.explain(e))),
    }
}

/// What runs on `key` now, in words, for `deployments list|show`: the
/// deploy or the verb, who started it and when, and a canary's wait.
pub fn running_text(r: &Rollout, key: &EnvKey) -> Option<String> {
    let run = super::json::RunningJson::of(r)?;
    let what = match &run.service {
        Some(s) => format!("{} (service {s})", run.verb),
        None => run.verb.to_owned(),
    };
    let who = format!(
        "rollout {} by {} since {}",
        run.rollout, run.operator, run.since
    );
    Some(if run.waiting {
        format!(
            "{what} running: {who} waits after its canary of {} host(s): `vigie deployments continue {key}` or `vigie deployments abort {key}`",
            run.canary
        )
    } else {
        format!("{what} running: {who} (follow it with `vigie deployments watch {key}`)")
    })
}

/// `deployments show`'s line about a deploy or verb running now.
pub fn show_running(r: Option<&Rollout>, key: &EnvKey) -> anyhow::Result<()> {
    if let Some(line) = r.and_then(|r| running_text(r, key)) {
        sayio!("{line}");
    }
    Ok(())
}
