//! The canary of a rolling update: the rollout deploys its hosts, waits
//! (a state that survives a restart) and only an operator's word moves
//! it on — `continue` to the other hosts, `abort` back to what ran.

use crate::inventory::Outcome;
use crate::rollout::{waiting, Command, Finish, Input, Options, Output, Phase};
use crate::{EnvRecord, Rollout};

use super::rollout::{crashed, facts, ok, records, submit_all, submits, MIGRATING, OPTS, WEB};
use super::{deploy, env};

fn canary(n: u32) -> Options {
    Options { canary: n, ..OPTS }
}

/// A v2 rollout with a canary of one host, run until it waits.
fn waiting_rollout() -> (Rollout, EnvRecord, String) {
    let (_, r1) = deploy(&env(WEB), None);
    let text = WEB.replace("v1", "v2");
    let mut r = Rollout::new(env(&text), "d9".into(), canary(1));
    r.start();
    let out = r.step(Input::Facts(facts(Some(r1.clone()))));
    assert_eq!(submits(&out), [("web-1".into(), "d9-1".into())]);
    let ids = submit_all(&mut r, &out, &text);
    let out = r.step(Input::Ended {
        change: ids[0].clone(),
        ended: ok(),
    });
    assert!(submits(&out).is_empty(), "web-2 waits: {out:?}");
    assert_eq!(r.state().phase, Phase::Wait(1));
    // What runs where is in the inventory while it waits.
    let rec = records(&out);
    assert_eq!(rec.len(), 1, "{out:?}");
    let last = rec[0].history.last().unwrap();
    assert_eq!(last.outcome, Outcome::InProgress);
    assert_ne!(rec[0].hosts["web-1"], r1.hosts["web-1"], "web-1 runs v2");
    assert_eq!(rec[0].hosts["web-2"], r1.hosts["web-2"], "web-2 runs v1");
    assert!(out.iter().any(|o| matches!(o, Output::Say(l)
        if l.contains("vigie deployments continue shop/prod") && l.contains("abort"))));
    assert!(waiting(&serde_json::to_vec(r.state()).unwrap()));
    (r, r1, text)
}

#[test]
fn a_canary_waits_across_a_restart_and_continue_deploys_the_other_hosts() {
    let (r, _, text) = waiting_rollout();
    // A restart while waiting: it waits still, submitting nothing.
    let mut r = crashed(&r, &text);
    let again = r.start();
    assert!(submits(&again).is_empty(), "{again:?}");
    assert_eq!(r.state().phase, Phase::Wait(1));
    // Nothing but a command moves it.
    assert!(r.step(Input::Recorded { done: false }).is_empty());
    let out = r.step(Input::Command(Command::Continue));
    assert_eq!(submits(&out), [("web-2".into(), "d9-2".into())]);
    // A second word once it goes on changes nothing.
    assert!(r.step(Input::Command(Command::Abort)).is_empty());
    let ids = submit_all(&mut r, &out, &text);
    let out = r.step(Input::Ended {
        change: ids[0].clone(),
        ended: ok(),
    });
    let rec = records(&out);
    assert_eq!(rec[0].history.last().unwrap().outcome, Outcome::Succeeded);
    let out = r.step(Input::Recorded { done: true });
    assert!(out.contains(&Output::Done(Finish::Succeeded)), "{out:?}");
}

#[test]
fn abort_takes_the_canary_back_to_the_instance_it_ran_and_records_what_runs() {
    let (mut r, r1, text) = waiting_rollout();
    let out = r.step(Input::Command(Command::Abort));
    assert_eq!(submits(&out), [("web-1".into(), "d9-2".into())]);
    // The way back: the previous instance started and checked, one
    // proxy switch, then the new replicas stopped.
    let spec = out
        .iter()
        .find_map(|o| match o {
            Output::Submit { spec, .. } => Some(spec.clone()),
            _ => None,
        })
        .unwrap();
    let names: Vec<&str> = spec.steps.iter().map(|s| s.name.as_str()).collect();
    let start = names.iter().position(|n| *n == "start web #1 replica 1");
    let switch = names.iter().position(|n| n.starts_with("switch the proxy"));
    let stop = names.iter().position(|n| *n == "stop web #2 replica 1");
    assert!(
        start < switch && switch < stop && start.is_some(),
        "{names:?}"
    );
    let switches = names
        .iter()
        .filter(|n| n.starts_with("switch the proxy"))
        .count();
    assert_eq!(switches, 1, "one reload: {names:?}");
    let ids = submit_all(&mut r, &out, &text);
    let out = r.step(Input::Ended {
        change: ids[0].clone(),
        ended: ok(),
    });
    let rec = records(&out);
    assert_eq!(rec[0].hosts, r1.hosts, "every host runs v1 again");
    assert_eq!(
        rec[0].components, r1.components,
        "instance numbers as before"
    );
    let last = rec[0].history.last().unwrap();
    assert_eq!(last.outcome, Outcome::RolledBack);
    assert_eq!(last.changes["web-1"], ids[0], "the way back is named");
    let out = r.step(Input::Recorded { done: true });
    assert!(out.contains(&Output::Done(Finish::RolledBack)), "{out:?}");
}

#[test]
fn a_canary_is_refused_on_a_first_deploy_and_when_migrations_are_pending() {
    let mut r = Rollout::new(env(WEB), "d1".into(), canary(1));
    r.start();
    let out = r.step(Input::Facts(facts(None)));
    assert!(submits(&out).is_empty());
    assert!(out.contains(&Output::Done(Finish::Refused)), "{out:?}");

    // A new database: migrations pending, a maintenance deploy.
    let no_db = MIGRATING.replace(
        "databases:\n  main:\n    engine: postgresql\n    server: postgresql://admin@db.internal/postgres\n",
        "",
    );
    let (_, r1) = deploy(&env(&no_db), None);
    let mut r = Rollout::new(env(&MIGRATING.replace("v1", "v2")), "d2".into(), canary(1));
    r.start();
    let out = r.step(Input::Facts(facts(Some(r1))));
    assert!(submits(&out).is_empty(), "{out:?}");
    assert!(out.contains(&Output::Done(Finish::Refused)), "{out:?}");
}

#[test]
fn a_canary_as_large_as_the_environment_does_not_wait() {
    let (_, r1) = deploy(&env(WEB), None);
    let text = WEB.replace("v1", "v2");
    let mut r = Rollout::new(env(&text), "d4".into(), canary(5));
    r.start();
    let out = r.step(Input::Facts(facts(Some(r1))));
    let ids = submit_all(&mut r, &out, &text);
    let out = r.step(Input::Ended {
        change: ids[0].clone(),
        ended: ok(),
    });
    assert_eq!(submits(&out), [("web-2".into(), "d4-2".into())]);
}
