//! Following a deploy the tower runs (`vigie deploy`, `vigie deployments
//! watch APP/ENV`): the rollout's lines as the deploy daemon records
//! them, read every 300 ms, until it ends. SIGINT or SIGTERM stops the
//! following, never the deploy: the CLI says so and how to follow again
//! (exit 75, temporary). The exit code is the deploy's: 0 when it
//! succeeded, 1 otherwise (its last line on stderr).

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use vigie_client::calls;
use vigie_deployer::{EnvKey, Part};
use vigie_wire::deploy::{Rollout, RolloutEnd};

use super::conn::Tower;
use super::failure::{Cause, Failure};
use super::out::{esay, sayio, Format};

const EVERY: Duration = Duration::from_millis(300);

/// `APP/ENVIRONMENT` as the deployer names it.
pub fn env_key(name: &str) -> anyhow::Result<EnvKey> {
    let parts = name
        .split_once('/')
        .and_then(|(a, e)| Some((Part::parse(a).ok()?, Part::parse(e).ok()?)));
    match parts {
        Some((app, environment)) => Ok(EnvKey { app, environment }),
        None => Err(Failure::error(
            Cause::Usage,
            format!("{name:?}: write APP/ENVIRONMENT, e.g. shop/prod"),
        )),
    }
}

fn read(client: &mut Tower, key: &EnvKey) -> anyhow::Result<Option<Rollout>> {
    let call = calls::DeployRollout {
        app: key.app.to_string(),
        environment: key.environment.to_string(),
    };
    Ok(client.ask(call)?.map(|r| *r))
}

/// The flag SIGINT and SIGTERM raise: taken before the deploy is sent,
/// so an interrupt at any moment after it detaches (never kills) the CLI.
pub fn interrupt_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    crate::runtime::shutdown_flag()
}

/// Follows `key`'s rollout (`id`, or whichever is there) to its end, or
/// until it waits after its canary; `stop` raised, it detaches.
pub fn follow(
    client: &mut Tower,
    key: &EnvKey,
    id: Option<&str>,
    format: Format,
    stop: &std::sync::atomic::AtomicBool,
) -> anyhow::Result<ExitCode> {
    follow_to(client, key, id, format, stop, RolloutEnd::Succeeded)
}

/// [`follow`], the end `expected` exiting 0 (an abort's is rolled back).
pub fn follow_to(
    client: &mut Tower,
    key: &EnvKey,
    id: Option<&str>,
    format: Format,
    stop: &std::sync::atomic::AtomicBool,
    expected: RolloutEnd,
) -> anyhow::Result<ExitCode> {
    let mut said: u64 = 0;
    let mut quiet_since: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            return Err(Failure::error(
                Cause::Temporary,
                format!(
                    "detached: the deploy of {key} goes on in the tower; follow it again with `vigie deployments watch {key}`"
                ),
            ));
        }
        let r = match read(client, key) {
            Ok(r) => r,
            // The tower restarting: the deploy goes on, keep following.
            Err(e) if quiet_since.is_none() => {
                esay!("vigie: the tower does not answer ({e:#}); still following");
                quiet_since = Some(Instant::now());
                continue;
            }
            Err(_) => {
                pause(stop);
                continue;
            }
        };
        quiet_since = None;
        let Some(r) = r.filter(|r| id.is_none_or(|id| r.id == id)) else {
            return Err(Failure::error(
                Cause::NotFound,
                format!("no deploy of {key} to follow"),
            ));
        };
        said = print_new(&r, said, format)?;
        if let Some(end) = r.end {
            return Ok(ended(&r, end, format, expected));
        }
        if r.waiting && r.command.is_none() {
            return super::deploy_canary::waits(&r, format);
        }
        pause(stop);
    }
}

fn pause(stop: &std::sync::atomic::AtomicBool) {
    let until = Instant::now() + EVERY;
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Prints the lines after the first `said`; returns the count said.
fn print_new(r: &Rollout, said: u64, format: Format) -> std::io::Result<u64> {
    let first = r.said.saturating_sub(r.lines.len() as u64);
    if said < first && said > 0 {
        esay!("… {} line(s) dropped", first - said);
    }
    if format != Format::Json {
        for (n, line) in (first..).zip(&r.lines) {
            if n >= said {
                sayio!("{}", line.text);
            }
        }
    }
    Ok(r.said)
}

fn ended(r: &Rollout, end: RolloutEnd, format: Format, expected: RolloutEnd) -> ExitCode {
    if format == Format::Json {
        let v = serde_json::json!({
            "rollout": r.id,
            "name": format!("{}/{}", r.app, r.environment),
            "operator": r.operator,
            "end": end.word(),
            "lines": r.lines.iter().map(|l| &l.text).collect::<Vec<_>>(),
        });
        let _ = super::out::json(&v);
    }
    if end == expected {
        return ExitCode::SUCCESS;
    }
    let last = r.lines.last().map_or("", |l| l.text.as_str());
    match (&r.unlocked_by, end) {
        (Some(by), RolloutEnd::Unlocked) => {
            esay!("vigie deploy: rollout {} was force-unlocked by {by}", r.id)
        }
        _ => esay!("vigie deploy: {last}"),
    }
    ExitCode::FAILURE
}
