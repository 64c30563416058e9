//! The rollout's state machine alone, without a tower: what each input
//! makes it do, and that a rollout rebuilt from its recorded state at
//! any step asks for exactly what it still lacks — the same changes,
//! under the same keys — and never plans from the inventory again.

use crate::inventory::Outcome;
use crate::rollout::{Ended, Facts, Finish, Input, Options, Output, Phase, State};
use crate::{EnvRecord, MigrateRun, Rollout};

use super::{deploy, env, hosts};

pub(super) const WEB: &str = "app: shop\nenvironment: prod\nhosts: web-*\nports: 21000-21009\nservices:\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    replicas: 2\n    health:\n      http: /h\n";

pub(super) const MIGRATING: &str = "app: shop\nenvironment: prod\nhosts: web-*\nports: 21000-21009\nservices:\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    health:\n      http: /h\ndatabases:\n  main:\n    engine: postgresql\n    server: postgresql://admin@db.internal/postgres\nmigrations:\n  service: web\n  pending: sh m pending\n  apply: sh m apply\n";

pub(super) const OPTS: Options = Options {
    parallel: 1,
    from_maintenance: false,
    operator: String::new(),
    started_ms: 0,
    version: None,
    canary: 0,
};

pub(super) fn facts(previous: Option<EnvRecord>) -> Facts {
    Facts {
        previous,
        targets: hosts(),
        others: Vec::new(),
        secrets: Default::default(),
    }
}

/// The hosts and keys of the submissions among `out`.
pub(super) fn submits(out: &[Output]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Submit { host, key, .. } => Some((host.clone(), key.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn records(out: &[Output]) -> Vec<EnvRecord> {
    out.iter()
        .filter_map(|o| match o {
            Output::Record { record, .. } => Some(record.clone()),
            _ => None,
        })
        .collect()
}

pub(super) fn ok() -> Ended {
    Ended {
        ok: true,
        migrate: MigrateRun::Succeeded,
        probe: None,
    }
}

fn failed(migrate: MigrateRun) -> Ended {
    Ended {
        ok: false,
        migrate,
        probe: None,
    }
}

/// Rebuilt from its state as the daemon records it (JSON), as after a
/// crash at this very point.
pub(super) fn crashed(r: &Rollout, text: &str) -> Rollout {
    let json = serde_json::to_vec(r.state()).unwrap();
    let state: State = serde_json::from_slice(&json).unwrap();
    Rollout::resume(env(text), state).unwrap()
}

/// Submits every change asked for (`cN` for key N), checking that a
/// rollout rebuilt before the submission asks for the very same ones.
pub(super) fn submit_all(r: &mut Rollout, out: &[Output], text: &str) -> Vec<String> {
    let asked = submits(out);
    assert_eq!(
        submits(&crashed(r, text).start()),
        asked,
        "resumed before submitting: same changes, same keys"
    );
    let mut ids = Vec::new();
    for (_, key) in asked {
        let change = format!("c-{key}");
        r.step(Input::Submitted {
            key,
            change: change.clone(),
        });
        ids.push(change);
    }
    assert!(
        submits(&crashed(r, text).start()).is_empty(),
        "resumed once submitted: nothing submitted again"
    );
    ids
}

#[test]
fn a_rolling_update_goes_a_wave_at_a_time_and_records_only_at_its_end() {
    let v1 = env(WEB);
    let (_, r1) = deploy(&v1, None);
    let opts = Options {
        operator: "alice".into(),
        started_ms: 1_765_059_662_000,
        ..OPTS
    };
    let mut r = Rollout::new(env(&WEB.replace("v1", "v2")), "d1".into(), opts);
    assert_eq!(r.start(), vec![Output::ReadFacts]);
    let out = r.step(Input::Facts(facts(Some(r1.clone()))));
    assert_eq!(submits(&out), [("web-1".into(), "d1-1".into())]);
    assert!(
        records(&out).is_empty(),
        "a rolling update records at its end"
    );
    let ids = submit_all(&mut r, &out, &WEB.replace("v1", "v2"));
    assert_eq!(r.open_changes(), ids);
    let out = r.step(Input::Ended {
        change: ids[0].clone(),
        ended: ok(),
    });
    assert_eq!(submits(&out), [("web-2".into(), "d1-2".into())]);
    let ids = submit_all(&mut r, &out, &WEB.replace("v1", "v2"));
    let out = r.step(Input::Ended {
        change: ids[0].clone(),
        ended: ok(),
    });
    let rec = records(&out);
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0].history.len(), 2);
    let last = &rec[0].history[1];
    assert_eq!(last.outcome, Outcome::Succeeded);
    assert_eq!(last.run.as_deref(), Some("d1"));
    assert_eq!(last.operator.as_deref(), Some("alice"));
    assert_eq!(last.at_ms, Some(1_765_059_662_000));
    assert_eq!(last.revisions.get("web").map(String::as_str), Some("v2"));
    // Crashed before the record was taken: it is asked for again.
    assert_eq!(records(&crashed(&r, &WEB.replace("v1", "v2")).start()), rec);
    let out = r.step(Input::Recorded { done: true });
    assert!(out.contains(&Output::Done(Finish::Succeeded)), "{out:?}");
    assert_eq!(r.finished(), Some(Finish::Succeeded));
}

#[test]
fn a_host_that_rolls_back_stops_the_rollout_and_the_others_keep_what_they_ran() {
    let (_, r1) = deploy(&env(WEB), None);
    let text = WEB.replace("v1", "v2");
    let mut r = Rollout::new(env(&text), "d2".into(), OPTS);
    r.start();
    let out = r.step(Input::Facts(facts(Some(r1.clone()))));
    let ids = submit_all(&mut r, &out, &text);
    // Why it failed is said first, after its host (issue 19: live, not
    // only in `vigie status`); a change not open says nothing.
    let why = vec![
        "step 4/9 (start) failed: exit 1".to_owned(),
        "  boom".to_owned(),
    ];
    let said = r.step(Input::Failed {
        change: ids[0].clone(),
        lines: why.clone(),
    });
    assert_eq!(
        said,
        [
            Output::Say("web-1: step 4/9 (start) failed: exit 1".into()),
            Output::Say("web-1:   boom".into())
        ]
    );
    let other = Input::Failed {
        change: "someone-else".into(),
        lines: why.clone(),
    };
    assert!(r.step(other).is_empty());
    let out = r.step(Input::Ended {
        change: ids[0].clone(),
        ended: failed(MigrateRun::NotRun),
    });
    assert!(submits(&out).is_empty(), "web-2 is never sent: {out:?}");
    let late = Input::Failed {
        change: ids[0].clone(),
        lines: why,
    };
    assert!(r.step(late).is_empty(), "an ended change is not said again");
    let rec = records(&out);
    assert_eq!(rec[0].hosts, r1.hosts, "what runs is what ran");
    assert_eq!(rec[0].history[1].outcome, Outcome::RolledBack);
    let out = r.step(Input::Recorded { done: true });
    assert!(out.contains(&Output::Done(Finish::RolledBack)), "{out:?}");
}

/// The tower refusing a submission (its host removed, the program too
/// large) ends that host as a rollback at once, said with the reason; a
/// refusal under a key already answered, or unknown, changes nothing.
#[test]
fn a_submission_the_tower_refuses_rolls_that_host_back_and_says_why() {
    let (_, r1) = deploy(&env(WEB), None);
    let text = WEB.replace("v1", "v2");
    let mut r = Rollout::new(env(&text), "d2".into(), OPTS);
    r.start();
    let out = r.step(Input::Facts(facts(Some(r1.clone()))));
    let (host, key) = submits(&out)[0].clone();
    let out = r.step(Input::SubmitRefused {
        key: key.clone(),
        why: "no host web-1".into(),
    });
    assert_eq!(
        out.first(),
        Some(&Output::Say(format!(
            "{host}: the tower refused its change: no host web-1"
        ))),
        "{out:?}"
    );
    assert!(submits(&out).is_empty(), "web-2 is never sent: {out:?}");
    assert_eq!(records(&out)[0].hosts, r1.hosts, "what runs is what ran");
    let again = Input::SubmitRefused {
        key,
        why: "twice".into(),
    };
    assert!(r.step(again).is_empty(), "a refusal is taken once");
    let unknown = Input::SubmitRefused {
        key: "no-such-key".into(),
        why: "?".into(),
    };
    assert!(r.step(unknown).is_empty());
}

/// Runs a maintenance deploy (a new database: migrations pending) until
/// the first host's upgrade ends as `first`; returns the outputs.
fn maintenance_until_first_upgrade(first: Ended) -> (Rollout, Vec<Output>, String) {
    let no_db = MIGRATING.replace(
        "databases:\n  main:\n    engine: postgresql\n    server: postgresql://admin@db.internal/postgres\n",
        "",
    );
    let (_, r1) = deploy(&env(&no_db), None);
    let text = MIGRATING.replace("v1", "v2");
    let mut r = Rollout::new(env(&text), "d3".into(), OPTS);
    r.start();
    let out = r.step(Input::Facts(facts(Some(r1))));
    // Recorded in progress before any host is touched.
    let first_record = out.iter().position(|o| matches!(o, Output::Record { .. }));
    let first_submit = out.iter().position(|o| matches!(o, Output::Submit { .. }));
    assert!(first_record < first_submit, "{out:?}");
    let rec = records(&out);
    assert_eq!(
        rec[0].history.last().map(|d| d.outcome),
        Some(Outcome::InProgress)
    );
    assert_eq!(rec[0].in_maintenance(), ["web-1", "web-2"]);
    assert_eq!(submits(&out).len(), 2, "every host enters maintenance");
    // Resumed mid-phase: its record again first, then the changes.
    let again = crashed(&r, &text).start();
    assert!(matches!(again[0], Output::Record { .. }), "{again:?}");
    let ids = submit_all(&mut r, &out, &text);
    r.step(Input::Ended {
        change: ids[0].clone(),
        ended: ok(),
    });
    let out = r.step(Input::Ended {
        change: ids[1].clone(),
        ended: ok(),
    });
    assert_eq!(submits(&out), [("web-1".into(), "d3-3".into())]);
    let ids = submit_all(&mut r, &out, &text);
    let out = r.step(Input::Ended {
        change: ids[0].clone(),
        ended: first,
    });
    (r, out, text)
}

/// Issue 19: an upgrade cut while its migrations ran may have committed
/// one: the hosts stay in maintenance, the previous version never comes
/// back on the migrated schema.
#[test]
fn an_upgrade_cut_in_its_migrations_leaves_the_hosts_in_maintenance() {
    let (mut r, out, _) = maintenance_until_first_upgrade(failed(MigrateRun::Unknown));
    assert!(submits(&out).is_empty(), "nothing goes back: {out:?}");
    let rec = records(&out);
    assert_eq!(rec[0].in_maintenance(), ["web-1", "web-2"]);
    assert_eq!(
        rec[0].history.last().map(|d| d.outcome),
        Some(Outcome::InMaintenance)
    );
    let out = r.step(Input::Recorded { done: true });
    assert!(
        out.contains(&Output::Done(Finish::InMaintenance)),
        "{out:?}"
    );
}

/// The last upgrade's in-progress record and the final one come out
/// together: only the final one's write ends the rollout.
#[test]
fn only_the_final_record_ends_a_maintenance_deploy() {
    let (mut r, out, text) = maintenance_until_first_upgrade(ok());
    let ids = submit_all(&mut r, &out, &text);
    let out = r.step(Input::Ended {
        change: ids[0].clone(),
        ended: ok(),
    });
    let dones: Vec<bool> = out
        .iter()
        .filter_map(|o| match o {
            Output::Record { done, .. } => Some(*done),
            _ => None,
        })
        .collect();
    assert_eq!(dones, [false, true], "{out:?}");
    assert!(r.step(Input::Recorded { done: false }).is_empty());
    assert_eq!(r.finished(), None);
    let out = r.step(Input::Recorded { done: true });
    assert!(out.contains(&Output::Done(Finish::Succeeded)), "{out:?}");
}

#[test]
fn an_upgrade_that_failed_before_its_migrations_goes_back_to_the_previous_version() {
    let (mut r, out, text) = maintenance_until_first_upgrade(failed(MigrateRun::NotRun));
    assert_eq!(
        submits(&out),
        [
            ("web-1".into(), "d3-4".into()),
            ("web-2".into(), "d3-5".into())
        ]
    );
    assert_eq!(r.state().phase, Phase::Leave);
    let ids = submit_all(&mut r, &out, &text);
    r.step(Input::Ended {
        change: ids[0].clone(),
        ended: ok(),
    });
    let out = r.step(Input::Ended {
        change: ids[1].clone(),
        ended: ok(),
    });
    let rec = records(&out);
    assert!(rec[0].in_maintenance().is_empty(), "{rec:?}");
    assert_eq!(
        rec[0].history.last().map(|d| d.outcome),
        Some(Outcome::RolledBack)
    );
}

#[test]
fn hosts_left_in_maintenance_refuse_a_plain_deploy_and_touch_nothing() {
    let (_, mut r1) = deploy(&env(WEB), None);
    r1.hosts.get_mut("web-1").unwrap().maintenance = true;
    let mut r = Rollout::new(env(&WEB.replace("v1", "v2")), "d4".into(), OPTS);
    r.start();
    let out = r.step(Input::Facts(facts(Some(r1.clone()))));
    assert!(
        submits(&out).is_empty() && records(&out).is_empty(),
        "{out:?}"
    );
    assert!(out.contains(&Output::Done(Finish::Refused)), "{out:?}");
    assert!(out.iter().any(
        |o| matches!(o, Output::Say(t) if t.contains("web-1") && t.contains("--from-maintenance"))
    ));
    // --from-maintenance: a maintenance deploy that never goes back.
    let opts = Options {
        from_maintenance: true,
        ..OPTS
    };
    let mut r = Rollout::new(env(&WEB.replace("v1", "v2")), "d5".into(), opts);
    r.start();
    let out = r.step(Input::Facts(facts(Some(r1))));
    assert_eq!(r.state().phase, Phase::Enter);
    assert!(r.state().schema_ahead);
    assert_eq!(submits(&out).len(), 2);
}

#[test]
fn changes_it_did_not_send_and_inputs_out_of_turn_change_nothing() {
    let (_, r1) = deploy(&env(WEB), None);
    let text = WEB.replace("v1", "v2");
    let mut r = Rollout::new(env(&text), "d6".into(), OPTS);
    r.start();
    let out = r.step(Input::Facts(facts(Some(r1.clone()))));
    let before = r.state().clone();
    assert!(r.step(Input::Recorded { done: true }).is_empty());
    assert!(r.step(Input::Recorded { done: false }).is_empty());
    assert!(r.step(Input::Facts(facts(None))).is_empty());
    assert!(r
        .step(Input::Ended {
            change: "someone-else".into(),
            ended: ok()
        })
        .is_empty());
    assert_eq!(r.state(), &before);
    let ids = submit_all(&mut r, &out, &text);
    // The same submission reported twice is taken once.
    assert!(r
        .step(Input::Submitted {
            key: "d6-1".into(),
            change: "other".into()
        })
        .is_empty());
    assert_eq!(r.open_changes(), ids);
}
