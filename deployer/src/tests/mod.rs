//! Unit tests of the deployer's pure parts, and what they share: an
//! environment from text, two hosts, a deploy every host of which succeeds.

use std::collections::BTreeMap;

use crate::plan::{plan, settle, DeployPlan};
use crate::{parse_environment, EnvRecord, Environment, Target};

mod check;
mod compile;
mod env_files;
mod migrations;
mod overrides;
mod plans;
mod rollout;
mod rollout_canary;
mod secrets;
mod verb_secrets;
mod verbs;

fn env(text: &str) -> Environment {
    parse_environment("env.yml", text).unwrap()
}

/// `web-1` and `web-2`, without labels.
fn hosts() -> Vec<Target> {
    ["web-1", "web-2"]
        .map(|id| Target::from_labels(id, &BTreeMap::new()).unwrap())
        .to_vec()
}

/// Plans against `hosts()` and settles with every host succeeding (each
/// its own change id).
fn deploy(env: &Environment, record: Option<&EnvRecord>) -> (DeployPlan, EnvRecord) {
    let p = plan(env, record, &hosts(), &[]).unwrap();
    let results: BTreeMap<String, (String, bool)> = p
        .busy_hosts()
        .enumerate()
        .map(|(i, h)| (h.host.clone(), (format!("c{i}"), true)))
        .collect();
    let next = settle(record, &p, env, &results);
    (p, next)
}

/// Issue 25 item 4: `follow: true` says the tower deploys hosts that join.
#[test]
fn an_environment_follows_joining_hosts_only_when_it_says_so() {
    let base = "app: shop\nenvironment: prod\nhosts: web-*\nservices:\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    health:\n      http: /h\n";
    assert!(!env(base).follow);
    assert!(env(&format!("{base}follow: true\n")).follow);
    assert!(parse_environment("e.yml", &format!("{base}follow: sometimes\n")).is_err());
}
