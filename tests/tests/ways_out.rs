//! The operator's ways out, through the front door and the CLI: a host
//! lost mid-change (abandon, retry, hosts remove), labels that rules give
//! to hosts registered later and that `hosts add` never silently replaces,
//! a revoked agent key re-admitted on purpose, and an audit fit for use
//! (filters, pages, each tenant's own numbers).

use std::time::Duration;

use vigie_tests::front::{add_operator, admin, client_with, grants};
use vigie_tests::{Launcher, Rule, Setup};
use vigie_wire::tower::{
    ApiAnswer, ApiCall, AuditFilter, AuditRecord, ChangeState, ChangeView, Labels,
};

/// What `vigie hosts --json` says of a host (the CLI's JSON contract, the
/// fields these tests read).
#[derive(Debug, serde::Deserialize)]
struct HostJson {
    id: String,
    online: bool,
    held: bool,
    labels: Labels,
}

/// What `vigie audit --json` says of a record.
#[derive(Debug, serde::Deserialize)]
struct AuditJson {
    tenant_seq: u64,
    action: String,
    summary: String,
}

/// What `vigie status --json` says of a change.
#[derive(Debug, serde::Deserialize)]
struct ChangeJson {
    state: String,
    waiting: Option<WaitingJson>,
}

#[derive(Debug, serde::Deserialize)]
struct WaitingJson {
    reason: String,
    message: String,
}

const WAIT: Duration = Duration::from_secs(30);

fn spec(yaml: &str) -> anyhow::Result<vigie_wire::change::ChangeSpec> {
    Ok(vigie_changes::parse_change("t.yml", yaml)?)
}

fn text(out: &std::process::Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(out: std::process::Output) -> anyhow::Result<String> {
    anyhow::ensure!(out.status.success(), "{}", text(&out));
    Ok(String::from_utf8(out.stdout)?)
}

fn refused(out: std::process::Output) -> anyhow::Result<String> {
    anyhow::ensure!(!out.status.success(), "should be refused: {}", text(&out));
    Ok(String::from_utf8(out.stderr)?)
}

fn json_lines<T: serde::de::DeserializeOwned>(stdout: &str) -> anyhow::Result<Vec<T>> {
    Ok(stdout
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

fn state(t: &Launcher, id: &str) -> anyhow::Result<ChangeState> {
    let v = t.api()?.changes(ApiCall::Status {
        change: Some(id.into()),
        limit: 1,
    })?;
    Ok(v[0].state)
}

fn hosts(t: &Launcher) -> anyhow::Result<Vec<HostJson>> {
    json_lines(&ok(t.cli(&["hosts", "--json"])?)?)
}

fn wait_event(t: &Launcher, name: &str, host: &str) -> anyhow::Result<()> {
    t.events()
        .wait_n(&format!("{name} {host}"), 1, WAIT, |e| {
            e.name == name && e.str("host") == Some(host)
        })
        .map(|_| ())
}

#[test]
fn a_lost_hosts_change_is_abandoned_never_rerun_retried_and_the_host_removed() -> anyhow::Result<()>
{
    let mut t = Launcher::start(Setup::new("waysout"))?;
    t.start_plug("lost-1", &[])?;
    let mut adm = admin(&t, None)?;
    let a = adm.changes(ApiCall::Submit {
        spec: spec("title: a\nsteps:\n  - run: echo a >> trace\n  - run: sleep 5\n")?,
        target: "lost-1".into(),
    })?[0]
        .id
        .clone();
    t.events().wait_n("step_started 1 of a", 1, WAIT, |e| {
        e.name == "step_started" && e.str("change") == Some(a.as_str()) && e.u64("step") == Some(1)
    })?;
    // The host is lost mid-change; more work queues behind it.
    t.kill_plug("lost-1")?;
    wait_event(&t, "host_offline", "lost-1")?;
    let b = adm.changes(ApiCall::Submit {
        spec: spec("title: b\nsteps:\n  - run: echo b >> trace\n")?,
        target: "lost-1".into(),
    })?[0]
        .id
        .clone();
    let err = refused(t.cli(&["cancel", &a])?)?;
    assert!(
        err.contains("only a queued change") && err.contains(&format!("vigie abandon {a}")),
        "points the way out: {err}"
    );
    let err = refused(t.cli(&["abandon", &b])?)?;
    assert!(
        err.contains("vigie cancel"),
        "a queued change is cancelled: {err}"
    );
    let out = ok(t.cli(&["abandon", &a])?)?;
    assert!(out.contains("abandoned"), "{out}");
    assert_eq!(state(&t, &a)?, ChangeState::Abandoned);

    // The host comes back on the same journal: it rolls its interrupted
    // change back and reports it; the tower consumes those reports, never
    // orders it again, and the queue moves on without a numbering gap.
    t.start_plug("lost-1", &[])?;
    let done = t.wait_final(std::slice::from_ref(&b), WAIT)?;
    assert_eq!(done[0].state, ChangeState::Succeeded);
    assert_eq!(
        std::fs::read_to_string(t.root("lost-1").join("trace"))?,
        "a\nb\n",
        "the abandoned change never ran again"
    );
    assert_eq!(state(&t, &a)?, ChangeState::Abandoned, "still abandoned");
    let gaps = t
        .events()
        .snapshot()
        .iter()
        .filter(|e| e.name == "report_rejected" && e.str("reason") == Some("out_of_order"))
        .count();
    assert_eq!(gaps, 0, "the host's report numbering stayed whole");
    let audit: Vec<AuditJson> = json_lines(&ok(t.cli(&["audit", "--change", &a, "--json"])?)?)?;
    assert!(
        audit.iter().any(
            |r| r.action == "abandoned" && r.summary.contains("outcome on the host is unknown")
        ),
        "{audit:?}"
    );

    // Gone for good: a retry queues for a host the tower says is offline.
    t.kill_plug("lost-1")?;
    t.events()
        .wait_n("host_offline lost-1 (x2)", 2, WAIT, |e| {
            e.name == "host_offline" && e.str("host") == Some("lost-1")
        })?;
    let out = ok(t.cli(&["retry", &b])?)?;
    assert!(
        out.contains("waiting: host lost-1 is offline"),
        "says what the change waits for: {out}"
    );
    let retried = t
        .api()?
        .changes(ApiCall::Queue {
            host: "lost-1".into(),
        })?
        .first()
        .map(|v| v.id.clone())
        .ok_or_else(|| anyhow::anyhow!("the retry is queued"))?;
    assert_ne!(retried, b);

    let err = refused(t.cli(&["hosts", "remove", "lost-1"])?)?;
    assert!(err.contains("--force") && err.contains(&retried), "{err}");
    assert!(hosts(&t)?.iter().any(|h| h.id == "lost-1"), "refused: kept");
    ok(t.cli(&["hosts", "remove", "lost-1", "--force"])?)?;
    assert!(!hosts(&t)?.iter().any(|h| h.id == "lost-1"));
    assert_eq!(state(&t, &retried)?, ChangeState::Cancelled);
    let audit: Vec<AuditJson> = json_lines(&ok(t.cli(&["audit", "--host", "lost-1", "--json"])?)?)?;
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    assert!(actions.contains(&"retried"), "{actions:?}");
    assert_eq!(actions.last(), Some(&"host_removed"), "{actions:?}");
    Ok(())
}

#[test]
fn label_rules_reach_hosts_registered_later_and_hosts_add_never_relabels() -> anyhow::Result<()> {
    let setup = Setup::new("rules")
        .rule(Rule::new("far-*").label("zone", "remote"))
        .rule(Rule::new("zone=remote").label("backup", "nightly"));
    let mut t = Launcher::start(setup)?;
    let ruled = |h: &HostJson| {
        h.labels.get("zone").map(String::as_str) == Some("remote")
            && h.labels.get("backup").map(String::as_str) == Some("nightly")
    };
    // An operator's host, and a plug that announces itself.
    ok(t.cli(&["hosts", "add", "far-1", "--label", "role=web"])?)?;
    t.start_plug("far-2", &["zone=elsewhere"])?;
    let list = hosts(&t)?;
    for id in ["far-1", "far-2"] {
        let h = list
            .iter()
            .find(|h| h.id == id)
            .ok_or_else(|| anyhow::anyhow!("{id} listed: {list:?}"))?;
        assert!(ruled(h), "the rules gave {id} its labels: {h:?}");
    }
    let far1 = |t: &Launcher| -> anyhow::Result<Labels> {
        Ok(hosts(t)?
            .into_iter()
            .find(|h| h.id == "far-1")
            .map(|h| h.labels)
            .unwrap_or_default())
    };
    let before = far1(&t)?;
    assert_eq!(before.get("role").map(String::as_str), Some("web"));
    // far-1 has no agent yet: a submission says what it waits for.
    let file = t.dir.path().join("c.yml");
    std::fs::write(&file, "title: t\nsteps:\n  - run: \"true\"\n")?;
    let out = ok(t.cli(&["submit", &file.display().to_string(), "--target", "far-1"])?)?;
    assert!(
        out.contains("waiting: host far-1 is offline: the change starts when it comes online"),
        "{out}"
    );

    // `hosts add` on a host that exists says so, and changes nothing.
    for args in [
        &["hosts", "add", "far-1"][..],
        &["hosts", "add", "far-1", "--label", "role=db"][..],
    ] {
        let err = refused(t.cli(args)?)?;
        assert!(err.contains("vigie hosts label far-1"), "{err}");
        assert_eq!(far1(&t)?, before, "{args:?} left the labels alone");
    }
    ok(t.cli(&["hosts", "label", "far-1", "role=db", "--remove", "backup"])?)?;
    let after = far1(&t)?;
    assert_eq!(after.get("role").map(String::as_str), Some("db"));
    assert!(!after.contains_key("backup") && after.contains_key("zone"));
    let audit: Vec<AuditJson> = json_lines(&ok(t.cli(&["audit", "--host", "far-1", "--json"])?)?)?;
    assert!(
        audit.iter().any(|r| r.action == "labels_set"
            && r.summary.contains("role=web")
            && r.summary.contains("-> [role=db,zone=remote]")),
        "{audit:?}"
    );
    Ok(())
}

fn audit(
    c: &mut vigie_client::ApiClient,
    limit: u32,
    filter: AuditFilter,
) -> anyhow::Result<Vec<AuditRecord>> {
    let ApiAnswer::Audit(v) = c.call(ApiCall::Audit {
        host: None,
        change: None,
        limit,
        filter: Box::new(filter),
    })?
    else {
        anyhow::bail!("audit answer")
    };
    Ok(v)
}

#[test]
fn the_audit_filters_pages_and_numbers_each_tenants_records_apart() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("audit"))?;
    let dir = t.dir.path().to_path_buf();
    // Another tenant's volume, before and between acme's records.
    let mut globex = admin(&t, Some("globex"))?;
    for i in 0..5 {
        globex.call(ApiCall::HostAdd {
            host: format!("g-{i}"),
            labels: Labels::new(),
        })?;
    }
    let mut acme = admin(&t, Some("acme"))?;
    acme.call(ApiCall::HostAdd {
        host: "a-1".into(),
        labels: Labels::new(),
    })?;
    let ann = add_operator(&t, &dir, "acme", "ann", &grants(&["changes.submit"])?)?;
    let mut ann = client_with(&t, &ann, None)?;
    let submit = |c: &mut vigie_client::ApiClient| -> anyhow::Result<ChangeView> {
        Ok(c.changes(ApiCall::Submit {
            spec: spec("title: s\nsteps:\n  - run: \"true\"\n")?,
            target: "a-1".into(),
        })?[0]
            .clone())
    };
    submit(&mut acme)?;
    globex.call(ApiCall::HostAdd {
        host: "g-9".into(),
        labels: Labels::new(),
    })?;
    let mark = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )?;
    let by_ann = submit(&mut ann)?;
    submit(&mut acme)?;

    let all = audit(&mut acme, 1000, AuditFilter::default())?;
    let numbers: Vec<u64> = all.iter().map(|r| r.tenant_seq).collect();
    assert_eq!(
        numbers,
        (1..=all.len() as u64).collect::<Vec<_>>(),
        "acme's own numbers, from 1 without gaps: {all:?}"
    );
    assert!(all.iter().all(|r| r.tenant == "acme" && r.seq == 0));
    let verified = acme.call(ApiCall::AuditVerify)?;
    assert!(
        matches!(verified, ApiAnswer::AuditVerified { records, .. } if records == all.len() as u64),
        "verify counts acme's records only: {verified:?}"
    );

    // Pages: back from the newest, then forward.
    let newest = audit(&mut acme, 2, AuditFilter::default())?;
    assert_eq!(newest, all[all.len() - 2..].to_vec());
    let before = audit(
        &mut acme,
        2,
        AuditFilter {
            before: Some(newest[0].tenant_seq),
            ..AuditFilter::default()
        },
    )?;
    assert_eq!(before, all[all.len() - 4..all.len() - 2].to_vec());
    let after = audit(
        &mut acme,
        1,
        AuditFilter {
            after: Some(1),
            ..AuditFilter::default()
        },
    )?;
    assert_eq!(after, all[1..2].to_vec());

    // By operator and by time.
    let anns = audit(
        &mut acme,
        1000,
        AuditFilter {
            operator: Some("ann".into()),
            ..AuditFilter::default()
        },
    )?;
    assert_eq!(anns.len(), 1, "{anns:?}");
    assert_eq!(anns[0].change, by_ann.id);
    let since = audit(
        &mut acme,
        1000,
        AuditFilter {
            since_ms: Some(mark),
            ..AuditFilter::default()
        },
    )?;
    assert_eq!(
        since,
        all[all.len() - 2..].to_vec(),
        "the two submissions after the mark"
    );

    // The CLI shows acme's numbers and pages with them.
    let page = ok(t.cli(&[
        "audit",
        "--tenant",
        "acme",
        "--before",
        &newest[0].tenant_seq.to_string(),
        "--limit",
        "1",
        "--json",
    ])?)?;
    let page: Vec<AuditJson> = json_lines(&page)?;
    let numbers: Vec<u64> = page.iter().map(|r| r.tenant_seq).collect();
    assert_eq!(numbers, vec![all[all.len() - 3].tenant_seq], "{page:?}");
    Ok(())
}

#[test]
fn a_revoked_agent_key_is_readmitted_only_on_purpose() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("readmit"))?;
    let key = vigie_majordomo::keys::write_new(&t.dir.path().join("far-1.key"))?;
    let public = key.public_z85();
    ok(t.cli(&["hosts", "add", "far-1", "--key", &public])?)?;
    ok(t.cli(&["hosts", "revoke", "far-1"])?)?;
    let err = refused(t.cli(&["hosts", "accept", "far-1", "--key", &public])?)?;
    assert!(
        err.contains("vigie keys gen") && err.contains("--readmit"),
        "says both ways forward: {err}"
    );
    let err = refused(t.cli(&["hosts", "add", "far-1", "--key", &public])?)?;
    assert!(err.contains("--readmit"), "{err}");
    ok(t.cli(&["hosts", "accept", "far-1", "--key", &public, "--readmit"])?)?;
    // The key gets in again at the door: its agent connects and runs.
    let state = t.dir.path().join("agents").join("far-1");
    let tower_key = std::fs::read_to_string(t.data_dir().join("keys/tower.public"))?;
    let mut agent = vigie_tests::Daemon::agent(
        &t.endpoint("majordomo"),
        &tower_key,
        &t.dir.path().join("far-1.key"),
        "far-1",
        &t.root("far-1"),
        &state,
    )?;
    if let Err(e) = agent.events.wait("agent_connected", WAIT) {
        anyhow::bail!("{e}; agent stderr: {}", agent.stderr());
    }
    wait_event(&t, "host_online", "far-1")?;
    let audit: Vec<AuditJson> = json_lines(&ok(t.cli(&["audit", "--host", "far-1", "--json"])?)?)?;
    assert!(
        audit.iter().any(|r| r.action == "key_readmitted"),
        "{audit:?}"
    );

    // Removing the host revokes its key: the agent is cut off at once.
    ok(t.cli(&["hosts", "remove", "far-1"])?)?;
    agent.events.wait("agent_revoked", WAIT)?;
    assert_eq!(agent.wait_exit(WAIT)?.code(), Some(3));
    let ApiAnswer::Keys(keys) = admin(&t, None)?.call(ApiCall::Keys)? else {
        anyhow::bail!("keys answer")
    };
    assert!(
        keys.iter()
            .any(|k| k.public == public && k.state == vigie_wire::front::KeyState::Revoked),
        "{keys:?}"
    );
    Ok(())
}

#[test]
fn abandon_hold_keeps_the_queue_until_the_operator_releases_it() -> anyhow::Result<()> {
    let mut t = Launcher::start(Setup::new("hold"))?;
    t.start_plug("h-1", &[])?;
    let mut adm = admin(&t, None)?;
    let mut submit = |yaml: &str| -> anyhow::Result<String> {
        Ok(adm.changes(ApiCall::Submit {
            spec: spec(yaml)?,
            target: "h-1".into(),
        })?[0]
            .id
            .clone())
    };
    let a = submit("title: a\nsteps:\n  - run: sleep 5\n")?;
    t.events().wait_n("step_started of a", 1, WAIT, |e| {
        e.name == "step_started" && e.str("change") == Some(a.as_str())
    })?;
    t.kill_plug("h-1")?;
    wait_event(&t, "host_offline", "h-1")?;
    let b = submit("title: b\nsteps:\n  - run: echo b >> trace\n")?;
    ok(t.cli(&["abandon", &a, "--hold"])?)?;

    // Back online, held: the referee dispatches on the heartbeat that
    // brings a host online, so b would be under way by now if not held.
    t.start_plug("h-1", &[])?;
    let h = hosts(&t)?
        .into_iter()
        .find(|h| h.id == "h-1")
        .ok_or_else(|| anyhow::anyhow!("h-1 listed"))?;
    assert!(h.online && h.held, "{h:?}");
    let status: Vec<ChangeJson> = json_lines(&ok(t.cli(&["status", &b, "--json"])?)?)?;
    assert_eq!(status[0].state, "queued");
    let waiting = status[0].waiting.as_ref();
    assert_eq!(
        waiting.map(|w| w.reason.as_str()),
        Some("host_held"),
        "says why it waits: {status:?}"
    );
    assert!(
        waiting.is_some_and(|w| w.message.contains("vigie hosts release h-1")),
        "{status:?}"
    );
    let out = ok(t.cli(&["status", &b])?)?;
    assert!(out.contains("vigie hosts release h-1"), "{out}");

    ok(t.cli(&["hosts", "release", "h-1"])?)?;
    let done = t.wait_final(std::slice::from_ref(&b), WAIT)?;
    assert_eq!(done[0].state, ChangeState::Succeeded);
    let audit: Vec<AuditJson> = json_lines(&ok(t.cli(&["audit", "--host", "h-1", "--json"])?)?)?;
    let actions: Vec<&str> = audit.iter().map(|r| r.action.as_str()).collect();
    assert!(
        actions.contains(&"host_held") && actions.contains(&"host_released"),
        "{actions:?}"
    );
    Ok(())
}
