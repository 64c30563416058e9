//! `vigie deployments check APP/ENV`: the inventory against what runs.
//! Each host the record places the environment on gets a change of one
//! step that only reads (`vigie_deployer::compile_check`), submitted and
//! followed like any change (audited, FIFO behind a deploy's); its
//! findings are printed per host, and the exit code is 1 when one is bad.

use std::process::ExitCode;

use vigie_deployer::{compile_check, findings, EnvKey, EnvRecord, Verdict, CHECK_STEP};
use vigie_wire::deploy::{DeployAnswer, DeployCall};
use vigie_wire::tower::{ApiAnswer, ApiCall, ChangeState};

use super::conn::Tower;
use super::escape::field;
use super::failure::{Cause, Failure};
use super::out::{esay, sayio, Format};

/// Whether a deploy of `key` runs now (what runs may still move).
fn deploying(client: &mut Tower, key: &EnvKey) -> bool {
    let call = ApiCall::Deploy(DeployCall::Rollout {
        app: key.app.to_string(),
        environment: key.environment.to_string(),
    });
    matches!(
        client.call(call),
        Ok(ApiAnswer::Deploy(DeployAnswer::Rollout(Some(r)))) if r.end.is_none()
    )
}

pub fn check(
    client: &mut Tower,
    key: &EnvKey,
    records: &[EnvRecord],
    format: Format,
) -> anyhow::Result<ExitCode> {
    let Some(record) = records.iter().find(|r| &r.key == key) else {
        return Err(Failure::error(
            Cause::NotFound,
            format!("no environment {key} in the inventory"),
        ));
    };
    if deploying(client, key) {
        esay!("vigie: a deploy of {key} is running: what runs may still move");
    }
    let mut ids = Vec::new();
    for host in record.hosts.keys() {
        let Some(spec) = compile_check(record, host) else {
            continue;
        };
        let views = client.changes(ApiCall::Submit {
            spec,
            target: host.clone(),
        })?;
        ids.extend(views.into_iter().map(|v| v.id));
    }
    let done = client.follow(&ids, None, |_, _| {})?;
    let mut bad = 0;
    for view in &done {
        let out = view
            .steps
            .iter()
            .find(|s| s.name == CHECK_STEP)
            .and_then(|s| s.result.as_ref());
        let Some(out) = out.filter(|_| view.state == ChangeState::Succeeded) else {
            bad += 1;
            sayio!(
                "{}: the check did not run (change {})",
                field(&view.host),
                view.id
            );
            continue;
        };
        let found = findings(&out.stdout_tail);
        let wrong = found.iter().filter(|f| f.verdict == Verdict::Bad).count();
        bad += wrong;
        if format == Format::Json {
            let v = serde_json::json!({
                "host": view.host,
                "ok": wrong == 0,
                "findings": found.iter().map(|f| serde_json::json!({
                    "verdict": match f.verdict { Verdict::Ok => "ok", Verdict::Bad => "bad", Verdict::Note => "note" },
                    "text": f.text,
                })).collect::<Vec<_>>(),
            });
            super::out::json(&v)?;
            continue;
        }
        sayio!(
            "{}: {}",
            field(&view.host),
            if wrong == 0 {
                "as the inventory says"
            } else {
                "differs from the inventory"
            }
        );
        for f in found.iter().filter(|f| f.verdict != Verdict::Ok) {
            let word = if f.verdict == Verdict::Bad {
                "BAD "
            } else {
                "note"
            };
            sayio!("  {word} {}", f.text);
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
