//! Verbs on an environment that reads secrets: `start`, `restart`,
//! `rollback` and a rotation write the current secrets (a `SecretFile`
//! naming them, holding no value), merged on the host into the env file
//! the instance was deployed with — the merge itself run by `sh` on a
//! directory shaped like a host's; a rotation restarts in place only the
//! running replicas that read the secret, and the next deploy of the same
//! file replaces nothing.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vigie_wire::change::{Action, ChangeSpec, Command, Step};
use vigie_wire::deploy::EnvVerb;

use crate::rollout::{Facts, Finish, Input, Output};
use crate::verb_rollout::VerbRollout;
use crate::verbs::{compile_verb, verb_record, verb_refusal};
use crate::{EnvRecord, Environment, Part, VerbHost};

use super::{deploy, hosts};

const ENV: &str = "\
app: shop
environment: prod
hosts: web-*
ports: 21000-21019
services:
  web:
    repository: /r
    revision: v1
    start: run
    replicas: 2
    health:
      http: /h
    env:
      GREETING: hello
      DB_PASSWORD: { secret: db_password }
  jobs:
    type: worker
    repository: /r
    revision: v1
    start: work
    env:
      API_KEY: { secret: api_key }
  mail:
    type: worker
    repository: /r
    revision: v1
    start: send
";

fn versions(db: u32) -> BTreeMap<String, u32> {
    [("db_password".to_string(), db), ("api_key".to_string(), 1)].into()
}

fn env(text: &str, db: u32) -> Environment {
    super::env(text).pin_secrets(&versions(db)).unwrap()
}

fn v2() -> String {
    ENV.replace("revision: v1", "revision: v2")
}

/// Two deploys (v1, v2) with version 1 of each secret.
fn deployed() -> EnvRecord {
    let (_, r1) = deploy(&env(ENV, 1), None);
    deploy(&env(&v2(), 1), Some(&r1)).1
}

fn part(name: &str) -> Part {
    Part::parse(name).unwrap()
}

fn at(host: &str) -> VerbHost<'_> {
    VerbHost {
        host,
        address: std::net::Ipv4Addr::LOCALHOST,
        first: host == "web-1",
        others: &[],
    }
}

fn compile(verb: &EnvVerb, record: &EnvRecord) -> Option<ChangeSpec> {
    // A verb works from the text, its secrets not pinned.
    compile_verb(&super::env(&v2()), record, verb, &at("web-1"))
}

/// Each step as one word and where: `secrets <path>`, `run <name>`.
fn shape(spec: &ChangeSpec) -> Vec<String> {
    spec.steps
        .iter()
        .map(|s| match &s.action {
            Action::SecretFile { path, .. } => format!("secrets {path}"),
            _ => s.name.clone(),
        })
        .collect()
}

fn position(shape: &[String], prefix: &str) -> usize {
    shape
        .iter()
        .position(|s| s.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {shape:#?}"))
}

#[test]
fn a_restart_writes_the_current_secrets_between_stop_and_start() {
    let spec = compile(&EnvVerb::Restart { service: None }, &deployed()).unwrap();
    let shape = shape(&spec);
    let dir = "/srv/services/auto-shop-prod-web/2/replica-1";
    let stop = position(&shape, "stop web #2 replica 1");
    let fragment = position(&shape, &format!("secrets {dir}/env.secrets"));
    let merge = position(&shape, "environment of web #2 replica 1 (current secrets)");
    let start = position(&shape, "start web #2 replica 1");
    assert!(
        stop < fragment && fragment < merge && merge < start,
        "{shape:#?}"
    );
    // The worker that reads another secret gets it too; the one that
    // reads none gets no env file.
    position(
        &shape,
        "secrets /srv/services/auto-shop-prod-jobs/2/replica-1/env.secrets",
    );
    assert!(!shape
        .iter()
        .any(|s| s.contains("auto-shop-prod-mail/2/replica-1/env")));
    assert_eq!(
        shape.last().map(String::as_str),
        Some("forget the env files replaced")
    );
    for step in &spec.steps {
        if let Action::SecretFile {
            environment,
            content,
            secrets,
            ..
        } = &step.action
        {
            assert_eq!(environment, "shop/prod");
            assert!(content.is_empty());
            assert!(secrets.iter().all(|s| s.sealed.is_empty()), "no value");
        }
    }
    let start = compile(
        &EnvVerb::Start {
            service: Some("web".into()),
        },
        &deployed(),
    )
    .unwrap();
    let shape = self::shape(&start);
    assert!(
        position(
            &shape,
            "secrets /srv/services/auto-shop-prod-web/2/replica-2/env.secrets"
        ) < position(&shape, "start web #2 replica 2"),
        "{shape:#?}"
    );
}

#[test]
fn a_rollback_gives_the_previous_instance_the_current_secrets() {
    let spec = compile(&EnvVerb::Rollback, &deployed()).unwrap();
    let shape = shape(&spec);
    let fragment = position(
        &shape,
        "secrets /srv/services/auto-shop-prod-web/1/replica-1/env.secrets",
    );
    let env = position(&shape, "environment of web #1 replica 1 (port");
    let start = position(&shape, "start web #1 replica 1");
    assert!(fragment < env && env < start, "{shape:#?}");
    position(
        &shape,
        "secrets /srv/services/auto-shop-prod-jobs/1/replica-1/env.secrets",
    );
    assert!(
        position(&shape, "environment of jobs #1 replica 1 (current secrets)")
            < position(&shape, "start jobs #1 replica 1")
    );
}

#[test]
fn a_rotation_restarts_in_place_only_the_running_replicas_that_read_it() {
    let r = deployed();
    let rotate = EnvVerb::Rotate {
        secret: "db_password".into(),
    };
    let spec = compile(&rotate, &r).unwrap();
    let shape = shape(&spec);
    // web only, at its instance (2): no fetch, no new directory.
    assert!(
        shape
            .iter()
            .all(|s| !s.contains("jobs") && !s.contains("mail")),
        "{shape:#?}"
    );
    assert!(
        shape
            .iter()
            .all(|s| !s.contains("fetch") && !s.contains("#3")),
        "{shape:#?}"
    );
    position(
        &shape,
        "secrets /srv/services/auto-shop-prod-web/2/replica-2/env.secrets",
    );
    // Stopped where it is stopped: nothing to do there, refused if everywhere.
    let mut stopped = r.clone();
    for h in stopped.hosts.values_mut() {
        h.stopped.insert(part("web"));
    }
    assert!(compile(&rotate, &stopped).is_none());
    let e = super::env(&v2());
    let why = verb_refusal(&e, &stopped, &rotate).unwrap();
    assert!(why.contains("reads secret db_password"), "{why}");
    let unread = EnvVerb::Rotate {
        secret: "other".into(),
    };
    assert!(verb_refusal(&e, &r, &unread).is_some());

    let results = BTreeMap::from([
        ("web-1".to_string(), ("c1".to_string(), true)),
        ("web-2".to_string(), ("c2".to_string(), true)),
    ]);
    let mut after = verb_record(&e, &r, &rotate, &results, &[]);
    assert_eq!(after.hosts, r.hosts, "same instances, same ports");
    let entry = after.history.last().unwrap();
    assert_eq!(entry.verb.as_deref(), Some("rotate db_password"));
    // The next deploy of the same file replaces nothing: the replicas
    // already read version 2.
    crate::verb_secrets::rotated_digests(&e, "db_password", &versions(2), &mut after);
    let plan = crate::plan::plan(&env(&v2(), 2), Some(&after), &hosts(), &[]).unwrap();
    assert!(plan.bumps.is_empty(), "{:?}", plan.bumps);
    // Without it (a value the replicas do not read yet), web is replaced.
    let plan = crate::plan::plan(&env(&v2(), 2), Some(&r), &hosts(), &[]).unwrap();
    assert_eq!(plan.bumps.len(), 1, "{:?}", plan.bumps);
}

#[test]
fn a_verb_that_writes_secrets_is_refused_when_one_is_not_set() {
    let mut m = VerbRollout::new(
        super::env(&v2()),
        "d1".into(),
        EnvVerb::Restart { service: None },
        ("alice".into(), 1),
    );
    m.start();
    let out = m.step(Input::Facts(Facts {
        previous: Some(deployed()),
        targets: hosts(),
        others: Vec::new(),
        secrets: [("api_key".to_string(), 1)].into(),
    }));
    assert_eq!(out.last(), Some(&Output::Done(Finish::Refused)), "{out:?}");
    assert!(
        out.iter()
            .any(|o| matches!(o, Output::Say(s) if s.contains("db_password"))),
        "{out:?}"
    );
    // A stop writes none: it goes on.
    let mut m = VerbRollout::new(
        super::env(&v2()),
        "d2".into(),
        EnvVerb::Stop { service: None },
        ("alice".into(), 1),
    );
    m.start();
    let out = m.step(Input::Facts(Facts {
        previous: Some(deployed()),
        targets: hosts(),
        others: Vec::new(),
        secrets: BTreeMap::new(),
    }));
    assert!(
        out.iter().any(|o| matches!(o, Output::Submit { .. })),
        "{out:?}"
    );
}

fn shell(step: &Step, undo: bool, root: &Path) -> std::process::Output {
    let Action::Run {
        command: Command::Shell(line),
        undo: back,
        ..
    } = &step.action
    else {
        panic!("{step:?}")
    };
    let line = match (undo, back) {
        (true, Some(Command::Shell(back))) => back.clone(),
        (false, _) => line.clone(),
        _ => panic!("no shell undo: {step:?}"),
    };
    std::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .env("VIGIE_HOST_ROOT", root)
        .output()
        .unwrap()
}

fn step<'a>(spec: &'a ChangeSpec, name: &str) -> &'a Step {
    spec.steps
        .iter()
        .find(|s| s.name.starts_with(name))
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// What the host's agent wrote: the plain part, then each secret (a
/// value may span lines).
const DEPLOYED: &str = "# Written by the Vigie deployer.\nBIND='127.0.0.1'\nGREETING='hello'\nINSTANCE='2'\nPORT='21002'\nREPLICA='1'\nDB_PASSWORD='old\nsecond line'\n";

#[test]
fn on_the_host_the_merge_keeps_the_plain_part_and_replaces_the_secrets() {
    let root = tempfile::tempdir().unwrap();
    let dir = root
        .path()
        .join("srv/services/auto-shop-prod-web/2/replica-1");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("env"), DEPLOYED).unwrap();
    std::fs::write(dir.join("env.secrets"), "DB_PASSWORD='new'\n").unwrap();
    let spec = compile(&EnvVerb::Restart { service: None }, &deployed()).unwrap();
    let merge = step(&spec, "environment of web #2 replica 1 (current secrets)");
    let out = shell(merge, false, root.path());
    assert!(out.status.success(), "{out:?}");
    let plain = DEPLOYED.split("DB_PASSWORD").next().unwrap();
    let now = std::fs::read_to_string(dir.join("env")).unwrap();
    assert_eq!(now, format!("{plain}DB_PASSWORD='new'\n"));
    let mode = std::fs::metadata(dir.join("env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(!dir.join("env.secrets").exists(), "the fragment is gone");
    // The undo puts the deployed file back; once the change is through,
    // the kept copy goes.
    assert!(shell(merge, true, root.path()).status.success());
    assert_eq!(std::fs::read_to_string(dir.join("env")).unwrap(), DEPLOYED);
    std::fs::write(dir.join("env.secrets"), "DB_PASSWORD='new'\n").unwrap();
    assert!(shell(merge, false, root.path()).status.success());
    assert!(dir.join("env.was").exists());
    let forget = step(&spec, "forget the env files replaced");
    assert!(shell(forget, false, root.path()).status.success());
    assert!(!dir.join("env.was").exists());
}

#[test]
fn on_the_host_a_rollback_gives_the_previous_env_its_port_and_current_secrets() {
    let root = tempfile::tempdir().unwrap();
    let instance = root.path().join("srv/services/auto-shop-prod-web/1");
    std::fs::create_dir_all(instance.join("src")).unwrap();
    std::fs::create_dir_all(instance.join("replica-1")).unwrap();
    std::fs::write(instance.join("replica-1/env"), DEPLOYED).unwrap();
    std::fs::write(
        instance.join("replica-1/env.secrets"),
        "DB_PASSWORD='now'\n",
    )
    .unwrap();
    let spec = compile(&EnvVerb::Rollback, &deployed()).unwrap();
    let env = step(&spec, "environment of web #1 replica 1 (port");
    let out = shell(env, false, root.path());
    assert!(out.status.success(), "{out:?}");
    let now = std::fs::read_to_string(instance.join("replica-1/env")).unwrap();
    assert!(now.ends_with("REPLICA='1'\nDB_PASSWORD='now'\n"), "{now}");
    assert!(
        !now.contains("old") && !now.contains("PORT='21002'"),
        "{now}"
    );
    assert!(!instance.join("replica-1/env.secrets").exists());
    let mode = std::fs::metadata(instance.join("replica-1/env"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}
