//! The verbs on a deployed environment, pure: what they refuse, what
//! each sends a host, what the inventory says after them, and the verb's
//! state machine (one host at a time, a failure stops it, a rollout
//! rebuilt from its recorded state asks for the same change).

use std::collections::BTreeMap;

use vigie_wire::change::{Action, Command};
use vigie_wire::deploy::EnvVerb;

use crate::rollout::{Ended, Facts, Finish, Input, Output};
use crate::verb_rollout::{VerbRollout, VerbState};
use crate::verbs::{compile_verb, previous_instance, rollback_plan, verb_record, verb_refusal};
use crate::{EnvRecord, MigrateRun, Part, VerbHost};

use super::{deploy, env, hosts};

const V1: &str = "app: shop\nenvironment: prod\nhosts: web-*\nports: 21000-21019\nservices:\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    replicas: 2\n    health:\n      http: /h\n  jobs:\n    type: worker\n    repository: /r\n    revision: v1\n    start: work\n";

fn v2() -> String {
    V1.replace("revision: v1", "revision: v2")
}

/// Two deploys (v1, v2): web and jobs at instance 2, instance 1 kept.
fn deployed() -> EnvRecord {
    let (_, r1) = deploy(&env(V1), None);
    let (_, r2) = deploy(&env(&v2()), Some(&r1));
    r2
}

fn web() -> Part {
    Part::parse("web").unwrap()
}

fn at(host: &str) -> VerbHost<'_> {
    VerbHost {
        host,
        address: std::net::Ipv4Addr::LOCALHOST,
        first: host == "web-1",
        others: &[],
    }
}

/// The shell lines of a change's run steps.
fn lines(verb: &EnvVerb, record: &EnvRecord) -> Vec<String> {
    let spec = compile_verb(&env(&v2()), record, verb, &at("web-1")).unwrap();
    spec.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Run {
                command: Command::Shell(line),
                ..
            } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

/// The site configurations a change stages, in order.
fn sites(verb: &EnvVerb, record: &EnvRecord) -> Vec<String> {
    let spec = compile_verb(&env(&v2()), record, verb, &at("web-1")).unwrap();
    spec.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::File { path, content, .. } if path.contains("/staged/") => {
                Some(String::from_utf8_lossy(content).into_owned())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_rollback_goes_to_the_instance_before_on_fresh_ports() {
    let r = deployed();
    assert_eq!(previous_instance(&r, &web(), 2), Some(1));
    assert_eq!(previous_instance(&r, &web(), 1), None);
    let backs = rollback_plan(&env(&v2()), &r, &[], "web-1");
    let b = backs.iter().find(|b| b.service == web()).unwrap();
    assert_eq!(b.to.instance, 1);
    let taken = r.ports_on("web-1");
    assert!(b.to.ports.iter().all(|p| !taken.contains(p)), "{b:?}");
    // The record says so, and the next deploy of any file bumps.
    let results = BTreeMap::from([
        ("web-1".to_string(), ("c1".to_string(), true)),
        ("web-2".to_string(), ("c2".to_string(), true)),
    ]);
    let after = verb_record(&env(&v2()), &r, &EnvVerb::Rollback, &results, &[]);
    assert_eq!(after.hosts["web-1"].services[&web()], b.to);
    assert_eq!(
        after.history.last().unwrap().verb.as_deref(),
        Some("rollback")
    );
    let (p, _) = deploy(&env(&v2()), Some(&after));
    assert!(!p.bumps.is_empty(), "v2 again is a new instance");
}

#[test]
fn a_rollback_never_fetches_and_stops_the_current_instance_last() {
    let line = lines(&EnvVerb::Rollback, &deployed()).join("\n");
    assert!(!line.contains("git clone"), "{line}");
    let start_old = line
        .find("start \"${VIGIE_HOST_ROOT%/}\"'/srv/services/auto-shop-prod-web/1'")
        .unwrap();
    let stop_new = line
        .find("stop \"${VIGIE_HOST_ROOT%/}\"'/srv/services/auto-shop-prod-web/2'")
        .unwrap();
    assert!(start_old < stop_new, "{line}");
}

#[test]
fn a_restart_never_leaves_a_web_service_without_a_replica_routed() {
    let r = deployed();
    let staged = sites(&EnvVerb::Restart { service: None }, &r);
    assert_eq!(staged.len(), 4, "out and back in, per replica");
    for site in &staged {
        assert!(site.contains("server 127.0.0.1:"), "{site}");
    }
    let ports = &r.hosts["web-1"].services[&web()].ports;
    assert!(!staged[0].contains(&format!(":{} ", ports[0])));
    assert!(staged[1].contains(&format!(":{} ", ports[0])));
}

#[test]
fn stop_of_one_service_touches_only_it_and_the_record_says_so() {
    let r = deployed();
    let verb = EnvVerb::Stop {
        service: Some("jobs".into()),
    };
    let all = lines(&verb, &r).join("\n");
    assert!(all.contains("auto-shop-prod-jobs"), "{all}");
    assert!(!all.contains("auto-shop-prod-web"), "{all}");
    let results = BTreeMap::from([("web-1".to_string(), ("c1".to_string(), true))]);
    let after = verb_record(&env(&v2()), &r, &verb, &results, &[]);
    let jobs = Part::parse("jobs").unwrap();
    assert!(after.hosts["web-1"].stopped.contains(&jobs));
    assert!(
        after.hosts["web-2"].stopped.is_empty(),
        "only hosts that succeeded"
    );
}

#[test]
fn verbs_are_refused_before_any_host_is_asked() {
    let (_, r1) = deploy(&env(V1), None);
    let e = env(V1);
    assert!(
        verb_refusal(&e, &r1, &EnvVerb::Rollback).is_some(),
        "one deploy so far"
    );
    let unknown = EnvVerb::Restart {
        service: Some("nope".into()),
    };
    assert!(verb_refusal(&e, &r1, &unknown).is_some());
    assert!(verb_refusal(&e, &r1, &EnvVerb::Restart { service: None }).is_none());
    let empty = EnvRecord::new(r1.key.clone());
    assert!(verb_refusal(&e, &empty, &EnvVerb::Stop { service: None }).is_some());
}

#[test]
fn undeploy_drops_data_only_when_asked_and_on_the_first_host() {
    let r = deployed();
    let text = format!("{}databases:\n  main:\n    engine: postgresql\n", v2());
    let e = env(&text);
    let kept = EnvVerb::Undeploy { drop_data: None };
    let dropped = EnvVerb::Undeploy {
        drop_data: Some("shop/prod".into()),
    };
    let has_drop = |verb: &EnvVerb, host: &str| {
        compile_verb(&e, &r, verb, &at(host))
            .unwrap()
            .steps
            .iter()
            .any(|s| s.name.starts_with("drop database"))
    };
    assert!(!has_drop(&kept, "web-1"));
    assert!(has_drop(&dropped, "web-1"));
    assert!(!has_drop(&dropped, "web-2"));
    let results = BTreeMap::from([
        ("web-1".to_string(), ("c1".to_string(), true)),
        ("web-2".to_string(), ("c2".to_string(), true)),
    ]);
    let after = verb_record(&e, &r, &kept, &results, &[]);
    assert!(after.hosts.is_empty() && after.components.is_empty());
}

#[test]
fn a_clean_dry_run_removes_nothing_and_a_clean_keeps_what_the_record_owns() {
    let r = deployed();
    let dry = lines(&EnvVerb::Clean { dry_run: true }, &r).join("\n");
    assert!(!dry.contains("rm -rf"), "{dry}");
    let wet = lines(&EnvVerb::Clean { dry_run: false }, &r).join("\n");
    assert!(wet.contains("rm -rf"), "{wet}");
    assert!(
        wet.contains("case ' 2 1 '"),
        "current and kept owned: {wet}"
    );
    assert!(
        wet.contains("running"),
        "a running instance is never removed: {wet}"
    );
}

#[test]
fn the_maintenance_page_is_served_with_retry_after() {
    let text = format!("{}maintenance_page: \"<h1>back soon</h1>\"\n", v2());
    let e = env(&text);
    let spec = compile_verb(
        &e,
        &deployed(),
        &EnvVerb::Maintenance { on: true },
        &at("web-1"),
    )
    .unwrap();
    let page = spec
        .steps
        .iter()
        .find(|s| s.name == "the maintenance page")
        .unwrap();
    assert!(
        matches!(&page.action, Action::File { content, .. } if content == b"<h1>back soon</h1>")
    );
    let conf = sites(&EnvVerb::Maintenance { on: true }, &deployed());
    assert!(conf[0].contains("return 503") && conf[0].contains("Retry-After 30"));
}

fn facts(previous: EnvRecord) -> Facts {
    Facts {
        previous: Some(previous),
        targets: hosts(),
        others: Vec::new(),
        secrets: Default::default(),
    }
}

fn submitted(out: &[Output]) -> Vec<(String, String)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Submit { host, key, .. } => Some((host.clone(), key.clone())),
            _ => None,
        })
        .collect()
}

fn ended(ok: bool) -> Ended {
    Ended {
        ok,
        migrate: MigrateRun::NotRun,
        probe: None,
    }
}

fn by() -> (String, u64) {
    ("alice".into(), 1_700_000_000_000)
}

fn resumed(m: &VerbRollout) -> VerbRollout {
    let json = serde_json::to_vec(m.state()).unwrap();
    let state: VerbState = serde_json::from_slice(&json).unwrap();
    VerbRollout::resume(env(&v2()), state)
}

#[test]
fn a_verb_goes_one_host_at_a_time_and_a_resumed_one_asks_for_the_same_change() {
    let mut m = VerbRollout::new(
        env(&v2()),
        "d1".into(),
        EnvVerb::Restart { service: None },
        by(),
    );
    assert_eq!(m.start(), vec![Output::ReadFacts]);
    let out = m.step(Input::Facts(facts(deployed())));
    let first = submitted(&out);
    assert_eq!(first, vec![("web-1".to_string(), "d1-1".to_string())]);
    assert_eq!(
        submitted(&resumed(&m).start()),
        first,
        "same key after a crash"
    );
    m.step(Input::Submitted {
        key: "d1-1".into(),
        change: "c1".into(),
    });
    assert_eq!(m.open_changes(), vec!["c1".to_string()]);
    let out = m.step(Input::Ended {
        change: "c1".into(),
        ended: ended(true),
    });
    assert_eq!(
        submitted(&out),
        vec![("web-2".to_string(), "d1-2".to_string())]
    );
    m.step(Input::Submitted {
        key: "d1-2".into(),
        change: "c2".into(),
    });
    let out = m.step(Input::Ended {
        change: "c2".into(),
        ended: ended(true),
    });
    let Some(Output::Record { record, .. }) = out.last() else {
        panic!("{out:?}")
    };
    let entry = record.history.last().unwrap();
    assert_eq!(entry.verb.as_deref(), Some("restart"));
    assert_eq!(entry.operator.as_deref(), Some("alice"), "who asked");
    assert_eq!(entry.at_ms, Some(1_700_000_000_000));
    let out = m.step(Input::Recorded { done: true });
    assert_eq!(out.last(), Some(&Output::Done(Finish::Succeeded)));
}

#[test]
fn a_host_that_rolls_back_stops_the_verb_and_only_the_others_change() {
    let mut m = VerbRollout::new(env(&v2()), "d1".into(), EnvVerb::Rollback, by());
    m.step(Input::Facts(facts(deployed())));
    m.step(Input::Submitted {
        key: "d1-1".into(),
        change: "c1".into(),
    });
    let out = m.step(Input::Ended {
        change: "c1".into(),
        ended: ended(false),
    });
    assert!(submitted(&out).is_empty(), "web-2 is not touched");
    let Some(Output::Record { record, .. }) = out.last() else {
        panic!("{out:?}")
    };
    assert_eq!(record.hosts["web-1"].services[&web()].instance, 2);
    assert_eq!(record.hosts["web-2"].services[&web()].instance, 2);
    let out = m.step(Input::Recorded { done: true });
    assert_eq!(out.last(), Some(&Output::Done(Finish::RolledBack)));
}

/// The catalog version a verb leaves running (what keeps a version from
/// being removed from the catalog): the last deploy's after a restart,
/// the one before after a rollback, none after an undeploy.
#[test]
fn a_verb_records_the_catalog_version_it_leaves_running() {
    let mut r = deployed();
    let n = r.history.len();
    r.history[n - 2].version = Some("1.0".into());
    r.history[n - 1].version = Some("2.0".into());
    let results = BTreeMap::from([
        ("web-1".to_string(), ("c1".to_string(), true)),
        ("web-2".to_string(), ("c2".to_string(), true)),
    ]);
    let version = |verb: &EnvVerb, r: &EnvRecord| {
        let after = verb_record(&env(&v2()), r, verb, &results, &[]);
        after.history.last().unwrap().version.clone()
    };
    let restarted = verb_record(
        &env(&v2()),
        &r,
        &EnvVerb::Restart { service: None },
        &results,
        &[],
    );
    assert_eq!(
        restarted.history.last().unwrap().version.as_deref(),
        Some("2.0")
    );
    // A verb's own entry is not a deploy: the next verb still finds 2.0.
    assert_eq!(
        version(&EnvVerb::Maintenance { on: true }, &restarted).as_deref(),
        Some("2.0")
    );
    assert_eq!(version(&EnvVerb::Rollback, &r).as_deref(), Some("1.0"));
    assert_eq!(version(&EnvVerb::Undeploy { drop_data: None }, &r), None);
}
