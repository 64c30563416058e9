//! Change requests end to end, through real processes: escalator, referee,
//! plugs with the local driver, and the `vigie` CLI.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState, ChangeView};

const LONG: Duration = Duration::from_secs(60);

fn spec(yaml: &str) -> vigie_wire::change::ChangeSpec {
    vigie_changes::parse_change("test.yml", yaml).expect("valid change")
}

fn submit(tower: &Launcher, yaml: &str, target: &str) -> anyhow::Result<Vec<ChangeView>> {
    let call = ApiCall::Submit {
        spec: spec(yaml),
        target: target.into(),
    };
    Ok(tower.api()?.changes(call)?)
}

fn ids(v: &[ChangeView]) -> Vec<String> {
    v.iter().map(|c| c.id.clone()).collect()
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A one-step change appending `token` to `trace` in the host root.
fn trace_change(token: &str) -> String {
    format!("title: trace {token}\nsteps:\n  - run: echo {token} >> trace\n")
}

#[test]
fn fifo_per_host_under_concurrent_submissions() -> anyhow::Result<()> {
    let setup = Setup::new("fifo")
        .host("a-1", &[("group", "a")])
        .host("a-2", &[("group", "a")])
        .host("a-3", &[("group", "a")]);
    let tower = std::sync::Arc::new(Launcher::start(setup)?);
    let submitters: Vec<_> = (0..4)
        .map(|t| {
            let tower = tower.clone();
            std::thread::spawn(move || -> anyhow::Result<Vec<ChangeView>> {
                let mut all = Vec::new();
                for i in 0..8 {
                    all.extend(submit(
                        &tower,
                        &trace_change(&format!("t{t}-{i}")),
                        "group=a",
                    )?);
                }
                Ok(all)
            })
        })
        .collect();
    let mut submitted = Vec::new();
    for s in submitters {
        submitted.extend(s.join().expect("submitter")?);
    }
    assert_eq!(submitted.len(), 4 * 8 * 3);
    let done = tower.wait_final(&ids(&submitted), LONG)?;
    let bad: Vec<_> = done
        .iter()
        .filter(|v| v.state != ChangeState::Succeeded)
        .collect();
    assert!(bad.is_empty(), "{bad:#?}");
    for host in ["a-1", "a-2", "a-3"] {
        // The order the host ran them in is the order of the referee's sequence.
        let mut by_seq: Vec<&ChangeView> = done.iter().filter(|v| v.host == host).collect();
        by_seq.sort_by_key(|v| v.seq);
        let want: Vec<String> = by_seq
            .iter()
            .map(|v| v.title.trim_start_matches("trace ").to_owned())
            .collect();
        assert_eq!(
            lines(&tower.root(host).join("trace")),
            want,
            "FIFO on {host}"
        );
    }
    Ok(())
}

#[test]
fn one_change_at_a_time_per_host_and_hosts_in_parallel() -> anyhow::Result<()> {
    let tower = Launcher::start(
        Setup::new("par")
            .host("p-1", &[])
            .host("p-2", &[])
            .host("p-3", &[]),
    )?;
    // Each change records its start and end (ns); two per host.
    let yaml = "title: slow\nsteps:\n  - run: echo start $(date +%s%N) >> spans; sleep 0.4; echo end $(date +%s%N) >> spans\n";
    let mut all = Vec::new();
    for _ in 0..2 {
        all.extend(submit(&tower, yaml, "p-*")?);
    }
    assert_eq!(all.len(), 6);
    let done = tower.wait_final(&ids(&all), LONG)?;
    assert!(
        done.iter().all(|v| v.state == ChangeState::Succeeded),
        "{done:#?}"
    );
    let mut spans = BTreeMap::new();
    for h in ["p-1", "p-2", "p-3"] {
        let l = lines(&tower.root(h).join("spans"));
        let v: Vec<(String, u128)> = l
            .iter()
            .map(|x| {
                let (w, t) = x.split_once(' ').expect("word time");
                (w.to_owned(), t.parse().expect("ns"))
            })
            .collect();
        let words: Vec<&str> = v.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(
            words,
            ["start", "end", "start", "end"],
            "{h}: changes overlapped on one host"
        );
        spans.insert(h, (v[0].1, v[1].1));
    }
    let latest_start = spans.values().map(|s| s.0).max().expect("spans");
    let earliest_end = spans.values().map(|s| s.1).min().expect("spans");
    assert!(
        latest_start < earliest_end,
        "the hosts' first changes ran in parallel: {spans:?}"
    );
    Ok(())
}

#[test]
fn failing_step_rolls_back_to_a_byte_identical_root() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("rollback").host("web-1", &[]))?;
    let root = tower.root("web-1");
    std::fs::create_dir_all(root.join("etc"))?;
    std::fs::create_dir_all(root.join("var/data/deep"))?;
    std::fs::write(root.join("etc/app.conf"), "release=1\n")?;
    std::fs::write(root.join("var/data/deep/blob"), [0u8, 1, 2, 255])?;
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(root.join("etc/app.conf"))?.permissions(),
        0o600,
    );
    let before = vigie_drivers::conformance::snapshot_tree(&root);
    let file = tower.data_dir().join("deploy.yml");
    std::fs::write(
        &file,
        "title: deploy 2\nsteps:\n  - file: /etc/app.conf\n    content: \"release=2\\n\"\n    mode: \"0644\"\n  - remove: /var/data\n  - name: migrate\n    run: echo boom >&2; exit 3\n  - file: /etc/never\n    content: x\n",
    )?;
    let out = tower.cli(&[
        "submit",
        file.to_str().expect("utf-8"),
        "--target",
        "web-1",
        "--wait",
        "--json",
    ])?;
    assert!(
        !out.status.success(),
        "a rolled back change makes --wait fail"
    );
    let stdout = String::from_utf8(out.stdout)?;
    let Some(line) = stdout.lines().last() else {
        anyhow::bail!(
            "no output; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let last: serde_json::Value = serde_json::from_str(line)?;
    assert_eq!(last["state"], "rolled_back", "{last}");
    assert_eq!(last["step"], 3, "steps are numbered from 1");
    let failed = &last["steps"][2]["result"];
    assert_eq!(failed["exit_code"], 3);
    assert!(failed["stderr_tail"]
        .as_str()
        .is_some_and(|t| t.contains("boom")));
    let last_id = last["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        vigie_drivers::conformance::snapshot_tree(&root),
        before,
        "root after rollback"
    );
    // The audit tells the story, step by step.
    let audit = tower.cli(&["audit", "--change", &last_id, "--json"])?;
    let actions: Vec<String> = String::from_utf8(audit.stdout)?
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).expect("json")["action"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    assert_eq!(
        actions,
        [
            "submitted",
            "step_applied",
            "step_applied",
            "step_failed",
            "step_undone",
            "step_undone",
            "finished"
        ]
    );
    Ok(())
}

#[test]
fn offline_host_gets_its_queue_when_it_starts_and_queued_changes_cancel() -> anyhow::Result<()> {
    let mut tower = Launcher::start(Setup::new("offline"))?;
    let out = tower.cli(&["hosts", "add", "late-1", "--label", "role=db"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut all = Vec::new();
    for t in ["one", "two", "three"] {
        all.extend(submit(&tower, &trace_change(t), "role=db")?);
    }
    let queue = tower.cli(&["queue", "late-1", "--json"])?;
    let queued: Vec<serde_json::Value> = String::from_utf8(queue.stdout)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let queued_ids: Vec<String> = queued
        .iter()
        .map(|v| v["id"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        queued_ids,
        ids(&all),
        "the queue lists the changes in FIFO order"
    );
    assert!(queued.iter().all(|v| v["state"] == "queued"));

    let cancel = tower.cli(&["cancel", &all[1].id])?;
    assert!(
        cancel.status.success(),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );
    let again = tower.cli(&["cancel", &all[1].id])?;
    assert!(
        !again.status.success(),
        "a cancelled change cannot be cancelled again"
    );

    tower.start_plug("late-1", &["role=db"])?;
    let done = tower.wait_final(&ids(&all), LONG)?;
    let states: Vec<ChangeState> = done.iter().map(|v| v.state).collect();
    assert_eq!(
        states,
        [
            ChangeState::Succeeded,
            ChangeState::Cancelled,
            ChangeState::Succeeded
        ]
    );
    assert_eq!(lines(&tower.root("late-1").join("trace")), ["one", "three"]);
    let running = tower.cli(&["cancel", &all[0].id])?;
    assert!(
        !running.status.success(),
        "a finished change cannot be cancelled"
    );
    Ok(())
}

#[test]
fn bad_change_file_is_refused_with_its_location_and_nothing_is_queued() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("bad").host("web-1", &[]))?;
    let file = tower.data_dir().join("bad.yml");
    std::fs::write(&file, "title: bad\nsteps:\n  - run: echo ok\n  - name: broken\n    file: /etc/x\n    content: x\n    mode: \"0999\"\n")?;
    let out = tower.cli(&["submit", file.to_str().expect("utf-8"), "--target", "web-1"])?;
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8(out.stderr)?;
    for part in ["bad.yml", "step 2", "broken", "mode", ":7:"] {
        assert!(err.contains(part), "error {err:?} should name {part:?}");
    }
    let unknown = tower.cli(&[
        "submit",
        "../examples/changes/hello.yml",
        "--target",
        "web-404",
    ])?;
    assert!(!unknown.status.success(), "an unknown host id is an error");
    let status = tower.api()?.changes(ApiCall::Status {
        change: None,
        limit: 10,
    })?;
    assert!(status.is_empty(), "nothing was queued: {status:?}");
    Ok(())
}

#[test]
fn audit_verify_detects_edited_and_deleted_records() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("audit").host("web-1", &[]))?;
    let c = submit(&tower, &trace_change("x"), "web-1")?;
    tower.wait_final(&ids(&c), LONG)?;
    let ok = tower.cli(&["audit", "verify"])?;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );

    let db = vigie_escalator::Client::connect(&tower.endpoint("escalator"))?.connect_db("tower")?;
    let key = b"audit/rec/00000000000000000002".to_vec();
    let original = db.get(&key)?.expect("record 2");
    let mut rec: vigie_wire::tower::AuditRecord = vigie_wire::decode(&original)?;
    rec.summary = "nothing to see".into();
    db.put(&key, &vigie_wire::encode(&rec)?)?;
    let edited = tower.cli(&["audit", "verify"])?;
    assert!(!edited.status.success());
    assert!(String::from_utf8(edited.stdout)?.contains("edited"));

    db.put(&key, &original)?;
    assert!(
        tower.cli(&["audit", "verify"])?.status.success(),
        "restored"
    );
    db.delete(&key)?;
    let deleted = tower.cli(&["audit", "verify"])?;
    assert!(!deleted.status.success());
    assert!(String::from_utf8(deleted.stdout)?.contains("deleted"));
    Ok(())
}
