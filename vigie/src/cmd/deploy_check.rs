//! `vigie deployments check APP/ENV`: the inventory against what runs.
//! Each host the record places the environment on gets a change of one
//! step that only reads (`vigie_deployer::compile_check`), submitted and
//! followed like any change (audited, FIFO behind a deploy's); its
//! findings are printed per host, and the exit code is 1 when one is bad.

use std::process::ExitCode;

use vigie_client::calls;
use vigie_deployer::{compile_check, findings, EnvKey, EnvRecord, Verdict, CHECK_STEP};
use vigie_wire::tower::ChangeState;

use super::conn::Tower;
use super::escape::field;
use super::failure::{Cause, Failure};
use super::out::{esay, sayio, Format};

/// Whether a deploy of `key` runs now (what runs may still move).
fn deploying(client: &mut Tower, key: &EnvKey) -> bool {
    let call = calls::DeployRollout {
        app: key.app.to_string(),
        environment: key.environment.to_string(),
    };
    matches!(client.ask(call), Ok(Some(r)) if r.end.is_none())
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
        let views = client.ask(calls::Submit {
            spec,
            target: host.clone(),
        })?;
        ids.extend(views.into_iter().map(|v| v.id));
    }
    let done = client.follow(&ids, None, |_, _| {})?;
    let mut bad = 0;
    for view in &done {
        bad += say_host(view, format)?;
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One host's findings; how many are bad (the check not run counts one).
fn say_host(view: &vigie_wire::tower::ChangeView, format: Format) -> anyhow::Result<usize> {
    let out = view
        .steps
        .iter()
        .find(|s| s.name == CHECK_STEP)
        .and_then(|s| s.result.as_ref());
    let Some(out) = out.filter(|_| view.state == ChangeState::Succeeded) else {
        sayio!(
            "{}: the check did not run (change {})",
            field(&view.host),
            view.id
        );
        return Ok(1);
    };
    let found = findings(&out.stdout_tail);
    let wrong = found.iter().filter(|f| f.verdict == Verdict::Bad).count();
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
        return Ok(wrong);
    }
    let verdict = if wrong == 0 {
        "as the inventory says"
    } else {
        "differs from the inventory"
    };
    sayio!("{}: {verdict}", field(&view.host));
    for f in found.iter().filter(|f| f.verdict != Verdict::Ok) {
        let word = if f.verdict == Verdict::Bad {
            "BAD "
        } else {
            "note"
        };
        sayio!("  {word} {}", f.text);
    }
    Ok(wrong)
}
