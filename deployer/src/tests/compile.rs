//! The steps of a rolling update, in order, with their undos.

use std::collections::BTreeMap;

use vigie_wire::change::{Action, Command};

use crate::plan::{plan, settle};
use crate::{compile_host, parse_environment, sh_quote, Target};

const ENV: &str = "\
app: shop
environment: prod
hosts: web-*
ports: 21000-21009
services:
  web:
    repository: /git/shop.git
    revision: v1
    install: ./install.sh
    start: python3 app.py
    replicas: 2
    health:
      http: /health
    drain: 250ms
  jobs:
    type: worker
    repository: /git/shop.git
    revision: v1
    start: python3 worker.py
cache:
  engine: redis
";

fn target(id: &str, address: Option<&str>) -> Target {
    let labels: BTreeMap<String, String> = address
        .map(|a| [("address".to_string(), a.to_string())].into())
        .unwrap_or_default();
    Target::from_labels(id, &labels).unwrap()
}

fn names(spec: &vigie_wire::change::ChangeSpec) -> Vec<String> {
    spec.steps.iter().map(|s| s.name.clone()).collect()
}

#[test]
fn a_rolling_update_starts_and_checks_every_replica_then_switches_once_before_stopping_old_ones() {
    let v1 = parse_environment("e", ENV).unwrap();
    let hosts = [target("web-1", Some("127.0.0.2"))];
    let p1 = plan(&v1, None, &hosts, &[]).unwrap();
    let ok: BTreeMap<String, (String, bool)> =
        [("web-1".to_string(), ("c1".to_string(), true))].into();
    let r1 = settle(None, &p1, &v1, &ok);
    let v2 = parse_environment("e", &ENV.replace("revision: v1", "revision: v2")).unwrap();
    let p2 = plan(&v2, Some(&r1), &hosts, &[]).unwrap();
    let change = compile_host(&v2, &p2, &p2.hosts[0], Default::default());
    assert_eq!(change.title, "deploy shop/prod #2 on web-1");
    let want = [
        "install the supervisor",
        "install the proxy switch",
        "configure the proxy",
        "start the proxy",
        "fetch web #2 (v2)",
        "start command of web #2",
        "grace period of web #2",
        // What the agent checks once the rollout is over.
        "health watch of web #2",
        "systemd unit of web #2",
        "install web #2",
        "environment of web #2 replica 1",
        "start web #2 replica 1",
        "health of web #2 replica 1",
        "environment of web #2 replica 2",
        "start web #2 replica 2",
        "health of web #2 replica 2",
        // Workers: the old one stops before the new one starts.
        "fetch jobs #2 (v2)",
        "start command of jobs #2",
        "grace period of jobs #2",
        "systemd unit of jobs #2",
        "stop jobs #1 replica 1",
        "environment of jobs #2 replica 1",
        "start jobs #2 replica 1",
        // One nginx reload per host and deploy (keep-alive clients).
        "proxy config for web #2",
        "switch the proxy to web #2",
        // Old web replicas only once every new one serves.
        "stop web #1 replica 1",
        "stop web #1 replica 2",
        // Last: what neither serves nor replaced it goes (bounded disk).
        "prune old instances of jobs",
        "prune old instances of web",
        "forget the staged proxy configs",
    ];
    assert_eq!(names(&change), want);

    let step = |name: &str| &change.steps.iter().find(|s| s.name == name).unwrap().action;
    // Each step that changes what runs has its undo.
    for (name, undo_has) in [
        ("fetch web #2 (v2)", "rm -rf"),
        ("start web #2 replica 1", "supervise' stop"),
        ("switch the proxy to web #2", "proxy' back"),
        ("stop web #1 replica 2", "supervise' start"),
    ] {
        let Action::Run {
            undo: Some(Command::Shell(undo)),
            ..
        } = step(name)
        else {
            panic!("{name}: no undo");
        };
        assert!(undo.contains(undo_has), "{name}: {undo}");
    }
    let Action::Run {
        command: Command::Shell(stop),
        ..
    } = step("stop web #1 replica 1")
    else {
        panic!()
    };
    assert!(stop.starts_with("sleep 0.250 && "), "drain first: {stop}");
    // The switch routes to every new replica, none of the old.
    let Action::File { content, .. } = step("proxy config for web #2") else {
        panic!()
    };
    let conf = String::from_utf8(content.clone()).unwrap();
    let old = &r1.hosts["web-1"].services[&crate::Part::parse("web").unwrap()].ports;
    let new = &p2.hosts[0]
        .services
        .iter()
        .find(|s| s.name.as_str() == "web")
        .unwrap()
        .ports;
    assert!(
        conf.contains(&format!("server 127.0.0.2:{} ", new[0])),
        "{conf}"
    );
    assert!(
        conf.contains(&format!("server 127.0.0.2:{} ", new[1])),
        "{conf}"
    );
    assert!(!conf.contains(&format!(":{} ", old[0])), "{conf}");
    assert!(!conf.contains(&format!(":{} ", old[1])), "{conf}");
    assert!(
        conf.contains(&format!("listen 127.0.0.2:{};", p2.hosts[0].proxy_port)),
        "{conf}"
    );
    let Action::File { content, .. } = step("environment of web #2 replica 2") else {
        panic!()
    };
    let dotenv = String::from_utf8(content.clone()).unwrap();
    for line in [
        "BIND='127.0.0.2'".to_string(),
        format!("PORT='{}'", new[1]),
        "INSTANCE='2'".into(),
        "REPLICA='2'".into(),
        "CACHE_PREFIX='auto-shop-prod:'".into(),
    ] {
        assert!(dotenv.lines().any(|l| l == line), "{line} in {dotenv}");
    }
}

#[test]
fn a_first_deploy_stops_nothing_and_quotes_what_it_is_given() {
    let text = ENV.replace("revision: v1", "revision: \"it's\"");
    let env = parse_environment("e", &text).unwrap();
    let p = plan(&env, None, &[target("web-1", None)], &[]).unwrap();
    let change = compile_host(&env, &p, &p.hosts[0], Default::default());
    assert!(!names(&change).iter().any(|n| n.starts_with("stop ")));
    let Action::Run {
        command: Command::Shell(fetch),
        ..
    } = &change.steps[4].action
    else {
        panic!()
    };
    assert!(fetch.contains(&sh_quote("it's^{commit}")), "{fetch}");
    assert_eq!(sh_quote("it's"), r"'it'\''s'");
}

#[test]
fn a_bad_address_label_is_refused() {
    let labels: BTreeMap<String, String> = [("address".to_string(), "nowhere".to_string())].into();
    let err = Target::from_labels("web-9", &labels)
        .unwrap_err()
        .to_string();
    assert!(err.contains("web-9") && err.contains("nowhere"), "{err}");
}

/// The scripts name the driver's variables by their values: they must
/// hand their services over in the very file the driver keeps them by,
/// and drop the very mark a driver going by marks reaps by.
#[test]
fn detached_processes_are_handed_over_to_the_local_driver() {
    assert_eq!(vigie_drivers::STEP_MARK_ENV, "VIGIE_STEP");
    assert_eq!(vigie_drivers::SERVICE_ENV, "VIGIE_SERVICE_PIDS");
    let handover = r#"echo $$ >>"$VIGIE_SERVICE_PIDS""#;
    assert!(crate::scripts::SUPERVISE.contains("env -u VIGIE_STEP setsid -f"));
    assert!(crate::scripts::SUPERVISE.contains(handover));
    assert!(crate::scripts::PROXY.contains("env -u VIGIE_STEP /bin/sh -c"));
    assert!(crate::scripts::PROXY.contains(handover));
    assert!(crate::scripts::PROXY.contains(r#"cat "$P/run/nginx.pid" >>"$VIGIE_SERVICE_PIDS""#));
}

/// The shell text of step `name` of `spec`.
fn command_of(spec: &vigie_wire::change::ChangeSpec, name: &str) -> String {
    spec.steps
        .iter()
        .find(|s| s.name.starts_with(name))
        .and_then(|s| match &s.action {
            Action::Run {
                command: Command::Shell(c),
                ..
            } => Some(c.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// Runs `line` with `sh` on the host root `root`.
fn on_host(root: &std::path::Path, line: &str) -> std::process::Output {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(line)
        .env("VIGIE_HOST_ROOT", root)
        .output()
        .unwrap()
}

/// Issue 19: a deploy planned on a stale inventory fetched "its" new
/// instance over the directory of the instance that served, and its
/// rollback deleted it. On the host, an instance whose replica runs is
/// never replaced nor pruned, whatever the plan says.
#[test]
fn a_running_instance_is_never_replaced_nor_pruned() {
    let root = tempfile::tempdir().unwrap();
    let bin = root.path().join("srv/services/auto-bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(bin.join("supervise"), crate::scripts::SUPERVISE).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        bin.join("supervise"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let service = root.path().join("srv/services/auto-shop-prod-web");
    let mut serving = std::process::Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap();
    for (instance, pid) in [(1, serving.id()), (2, 0)] {
        let rep = service.join(format!("{instance}/replica-1"));
        std::fs::create_dir_all(&rep).unwrap();
        if pid > 0 {
            std::fs::write(rep.join("supervisor.pid"), format!("{pid}\n")).unwrap();
        }
    }
    // A plan that believes nothing runs: instance 1 is "new" again.
    let env = parse_environment("env.yml", ENV).unwrap();
    let p = plan(&env, None, &[target("web-1", None)], &[]).unwrap();
    let change = compile_host(&env, &p, &p.hosts[0], crate::Duties::default());
    let fetched = on_host(root.path(), &command_of(&change, "fetch web #1"));
    assert_eq!(fetched.status.code(), Some(75), "{fetched:?}");
    assert!(String::from_utf8_lossy(&fetched.stderr).contains("is running"));
    assert!(
        service.join("1/replica-1/supervisor.pid").exists(),
        "kept whole"
    );
    // Pruning around a new instance 3 that replaced 2: 1 runs, so it stays.
    let r1 = settle(
        None,
        &p,
        &env,
        &[("web-1".into(), ("c1".into(), true))].into(),
    );
    let mut r2 = r1.clone();
    r2.hosts
        .get_mut("web-1")
        .unwrap()
        .services
        .get_mut(&crate::Part::parse("web").unwrap())
        .unwrap()
        .instance = 2;
    let code = crate::Component::Code(crate::Part::parse("web").unwrap());
    r2.components.get_mut(&code).unwrap().instance = 2;
    let v3 = parse_environment("env.yml", &ENV.replace("revision: v1", "revision: v3")).unwrap();
    let p3 = plan(&v3, Some(&r2), &[target("web-1", None)], &[]).unwrap();
    let change = compile_host(&v3, &p3, &p3.hosts[0], crate::Duties::default());
    let pruned = on_host(
        root.path(),
        &command_of(&change, "prune old instances of web"),
    );
    assert!(pruned.status.success(), "{pruned:?}");
    assert!(service.join("1").exists(), "{pruned:?}");
    assert!(String::from_utf8_lossy(&pruned.stdout).contains("instance 1 runs: kept"));
    // Once it stopped, it is an old instance like any other.
    serving.kill().unwrap();
    serving.wait().unwrap();
    let pruned = on_host(
        root.path(),
        &command_of(&change, "prune old instances of web"),
    );
    assert!(pruned.status.success(), "{pruned:?}");
    assert!(!service.join("1").exists(), "{pruned:?}");
    assert!(service.join("2").exists(), "the one it replaces is kept");
}

#[test]
fn each_web_instance_asks_its_agent_to_keep_checking_it_after_the_rollout() {
    let v1 = parse_environment("e", ENV).unwrap();
    let hosts = [target("web-1", Some("127.0.0.2"))];
    let p1 = plan(&v1, None, &hosts, &[]).unwrap();
    let change = compile_host(&v1, &p1, &p1.hosts[0], Default::default());
    let watch = change
        .steps
        .iter()
        .find(|s| s.name == "health watch of web #1")
        .expect("a watch file for the web service");
    let Action::File { path, content, .. } = &watch.action else {
        panic!("{watch:?}");
    };
    assert!(path.ends_with("/1/health_watch"), "{path}");
    let read = vigie_wire::observe::HealthWatch::parse(std::str::from_utf8(content).unwrap());
    // The defaults: every 10 s, 3 failures in a row; the start window is
    // what the rollout gives (30 × (500 ms + 2 s)).
    assert_eq!(
        read,
        Some(vigie_wire::observe::HealthWatch {
            path: "/health".into(),
            every_ms: 10_000,
            timeout_ms: 2_000,
            restart_after: 3,
            start_ms: 75_000,
        })
    );
    // A worker has no HTTP check: nothing to watch.
    assert!(!change
        .steps
        .iter()
        .any(|s| s.name == "health watch of jobs #1"));

    // Written: `every` and `restart_after` are read (0: watch only) ...
    let tuned = ENV.replace(
        "      http: /health\n",
        "      http: /health\n      every: 2s\n      restart_after: 0\n",
    );
    let health = parse_environment("e", &tuned).unwrap().services
        [&crate::Part::parse("web").unwrap()]
        .health
        .clone()
        .unwrap();
    assert_eq!(
        (health.watch_every_ms(), health.restarts_after()),
        (2_000, 0)
    );
    // ... absent, they leave a spec's digest as it was before they existed
    // (no instance bumped by an upgrade of the deployer).
    let before = parse_environment("e", ENV).unwrap().services[&crate::Part::parse("web").unwrap()]
        .health
        .clone()
        .unwrap();
    let json = serde_json::to_string(&before).unwrap();
    assert_eq!(
        json,
        r#"{"path":"/health","retries":30,"interval_ms":500,"timeout_ms":2000}"#
    );
}
