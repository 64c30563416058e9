//! The operator's side of a canary (`vigie deploy --canary N`): a deploy
//! followed until it waits says so and how to go on, exit 0 (the deploy
//! waits in the tower, not in the terminal); `vigie deployments
//! continue|abort APP/ENV` tells it (refused unless it waits) and
//! follows it to its end; `deployments show` says it waits.

use std::process::ExitCode;

use vigie_client::calls;
use vigie_deployer::EnvKey;
use vigie_wire::deploy::{Rollout, RolloutCommand, RolloutEnd};

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

/// `deployments show`'s line about a deploy running now.
pub fn show_waiting(client: &mut Tower, key: &EnvKey) -> anyhow::Result<()> {
    let r = client.ask(calls::DeployRollout {
        app: key.app.to_string(),
        environment: key.environment.to_string(),
    })?;
    let Some(r) = r.filter(|r| r.end.is_none()) else {
        return Ok(());
    };
    if r.waiting && r.command.is_none() {
        sayio!(
            "deploy running: rollout {} by {} waits after its canary of {} host(s): `vigie deployments continue {key}` or `vigie deployments abort {key}`",
            r.id,
            r.operator,
            r.canary
        );
    } else {
        sayio!(
            "deploy running: rollout {} by {} (follow it with `vigie deployments watch {key}`)",
            r.id,
            r.operator
        );
    }
    Ok(())
}
