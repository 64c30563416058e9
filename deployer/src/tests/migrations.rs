//! Deploys with migrations: when the first host is asked, the order of a
//! maintenance deploy's steps (each with its undo), databases and
//! migrations on the first host only, what instances are told about their
//! databases and cache, and which instance directories are pruned.

use vigie_wire::change::{Action, ChangeSpec, Command};

use super::{deploy, env, hosts};
use crate::plan::plan;
use crate::{
    compile_enter, compile_host, compile_leave, compile_probe, compile_upgrade, connections,
    kept_instances, migration_check, parse_environment, probe_answer, Duties, MigrationCheck,
};

const ENV: &str = "\
app: shop
environment: prod
hosts: web-*
ports: 21000-21009
services:
  web:
    repository: /git/shop.git
    revision: v1
    start: python3 app.py
    replicas: 2
    health:
      http: /health
  jobs:
    type: worker
    repository: /git/shop.git
    revision: v1
    start: python3 worker.py
databases:
  main:
    engine: postgresql
    server: postgresql://admin@db.internal:5433/postgres?sslmode=require
cache:
  engine: redis
  url: redis://cache.internal:6380/2
migrations:
  service: web
  pending: sh migrate.sh pending
  apply: sh migrate.sh apply
";

fn names(spec: &ChangeSpec) -> Vec<String> {
    spec.steps.iter().map(|s| s.name.clone()).collect()
}

fn undo_of<'a>(spec: &'a ChangeSpec, name: &str) -> Option<&'a str> {
    spec.steps
        .iter()
        .find(|s| s.name == name)
        .and_then(|s| match &s.action {
            Action::Run {
                undo: Some(Command::Shell(u)),
                ..
            } => Some(u.as_str()),
            _ => None,
        })
}

#[test]
fn when_the_first_host_is_asked_about_pending_migrations() {
    let v1 = env(ENV);
    let (p1, r1) = deploy(&v1, None);
    assert_eq!(migration_check(&v1, &p1), MigrationCheck::FirstDeploy);
    // The first deploy runs them on the first host only, before it starts anything.
    let first = compile_host(&v1, &p1, &p1.hosts[0], Duties::of_host(&v1, 0, true));
    let n = names(&first);
    let migrate = n
        .iter()
        .position(|s| s == "run the pending migrations")
        .unwrap();
    let start = n
        .iter()
        .position(|s| s.starts_with("start web #1"))
        .unwrap();
    let db = n
        .iter()
        .position(|s| s == "database auto-shop-prod-main")
        .unwrap();
    assert!(db < migrate && migrate < start, "{n:?}");
    let other = compile_host(&v1, &p1, &p1.hosts[1], Duties::of_host(&v1, 1, true));
    assert!(!names(&other)
        .iter()
        .any(|s| s.contains("migrations") || s.starts_with("database")));

    // New code of the migrations' service: ask.
    let v2 = env(&ENV.replace("revision: v1", "revision: v2"));
    let (p2, r2) = deploy(&v2, Some(&r1));
    assert_eq!(migration_check(&v2, &p2), MigrationCheck::Probe);
    // Only the cache changed: no code rolls, nothing to ask.
    let v3 = env(&ENV.replace("  url: redis", "  version: \"2\"\n  url: redis"));
    let (p3, _) = deploy(&v3, Some(&r1));
    assert_eq!(migration_check(&v3, &p3), MigrationCheck::NotNeeded);
    assert_eq!(p3.bumps.len(), 1, "{:?}", p3.bumps);
    // A database new to a running environment: pending, no question.
    let v4 = env(&ENV
        .replace("revision: v1", "revision: v4")
        .replace("cache:\n", "  extra:\n    engine: postgresql\ncache:\n"));
    let (p4, _) = deploy(&v4, Some(&r2));
    assert_eq!(migration_check(&v4, &p4), MigrationCheck::Pending);
    // Without migrations, never.
    let plain = env(&ENV[..ENV.find("migrations:").unwrap()]);
    let (pp, _) = deploy(&plain, None);
    assert_eq!(migration_check(&plain, &pp), MigrationCheck::NotNeeded);
}

#[test]
fn the_probe_touches_nothing_that_serves_and_its_answer_is_read_back() {
    let v1 = env(ENV);
    let (_, r1) = deploy(&v1, None);
    let v2 = env(&ENV.replace("revision: v1", "revision: v2"));
    let p2 = plan(&v2, Some(&r1), &hosts(), &[]).unwrap();
    let probe = compile_probe(&v2, &p2, &p2.hosts[0]).unwrap();
    assert_eq!(
        names(&probe),
        [
            "environment of the migrations check",
            "check for pending migrations (v2)"
        ]
    );
    let Action::Run {
        command: Command::Shell(line),
        ..
    } = &probe.steps[1].action
    else {
        panic!()
    };
    assert!(
        line.contains("/srv/services/auto-shop-prod-web/probe'/src"),
        "{line}"
    );
    assert!(
        !line.contains("supervise") && !line.contains("proxy"),
        "{line}"
    );
    assert_eq!(probe_answer("fetching\nmigrations: pending\n"), Some(true));
    assert_eq!(probe_answer("migrations: none"), Some(false));
    assert_eq!(probe_answer("pending: 002\n"), None);
}

#[test]
fn a_maintenance_deploy_stops_everything_migrates_once_and_can_go_back() {
    let v1 = env(ENV);
    let (_, r1) = deploy(&v1, None);
    let v2 = env(&ENV.replace("revision: v1", "revision: v2"));
    let p2 = plan(&v2, Some(&r1), &hosts(), &[]).unwrap();
    let host = &p2.hosts[0];

    let enter = compile_enter(&v2, &p2, host);
    let n = names(&enter);
    let tail: Vec<&str> = n[n.len() - 5..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "proxy config for maintenance",
            "switch the proxy to maintenance",
            // Workers first, then web replicas: nothing writes during the migrations.
            "stop jobs #1 replica 1",
            "stop web #1 replica 1",
            "stop web #1 replica 2",
        ]
    );
    let Action::File { content, .. } = &enter.steps[n.len() - 5].action else {
        panic!()
    };
    let conf = String::from_utf8_lossy(content);
    assert!(
        conf.contains("return 503") && conf.contains("add_header Retry-After 30 always"),
        "{conf}"
    );
    assert!(
        undo_of(&enter, "switch the proxy to maintenance").is_some_and(|u| u.contains(" back "))
    );
    assert!(undo_of(&enter, "stop web #1 replica 1")
        .is_some_and(|u| u.contains("supervise\" start") || u.contains("supervise' start")));

    let upgrade = compile_upgrade(&v2, &p2, host, Duties::of_host(&v2, 0, true));
    let n = names(&upgrade);
    let at = |name: &str| {
        n.iter()
            .position(|s| s == name)
            .unwrap_or_else(|| panic!("{name}: {n:?}"))
    };
    assert!(at("database auto-shop-prod-main") < at("fetch web #2 (v2)"));
    assert!(at("install the database helper") < at("database auto-shop-prod-main"));
    assert!(at("fetch jobs #2 (v2)") < at("run the pending migrations"));
    assert!(at("run the pending migrations") < at("start web #2 replica 1"));
    assert!(
        at("health of web #2 replica 2")
            < at("switch the proxy to the new version (maintenance ends)")
    );
    assert_eq!(
        n[n.len() - 2..],
        [
            "prune old instances of web",
            "forget the staged proxy configs"
        ]
    );
    // The database's undo drops only what its step created.
    assert!(undo_of(&upgrade, "database auto-shop-prod-main").is_some_and(|u| u.contains(" undo ")));
    // Other hosts neither make databases nor migrate.
    let second = compile_upgrade(&v2, &p2, &p2.hosts[1], Duties::of_host(&v2, 1, true));
    assert!(!names(&second)
        .iter()
        .any(|s| s.contains("migrations") || s.starts_with("database")));

    // Going back starts what ran, checks it, and routes to it.
    let leave = compile_leave(&v2, &p2, host);
    let n = names(&leave);
    let tail: Vec<&str> = n[n.len() - 7..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            "start jobs #1 replica 1",
            "start web #1 replica 1",
            "health of web #1 replica 1",
            "start web #1 replica 2",
            "health of web #1 replica 2",
            "proxy config for the previous version (maintenance ends)",
            "switch the proxy to the previous version (maintenance ends)",
        ]
    );
}

#[test]
fn instances_are_told_their_own_database_role_and_cache() {
    let e = env(ENV);
    let vars = connections(&e);
    assert_eq!(
        vars["DATABASE_URL"],
        "postgresql://auto-shop-prod-main@db.internal:5433/auto-shop-prod-main?sslmode=require"
    );
    assert_eq!(vars["DATABASE_URL_MAIN"], vars["DATABASE_URL"]);
    assert_eq!(vars["REDIS_URL"], "redis://cache.internal:6380/2");
    assert_eq!(vars["CACHE_PREFIX"], "auto-shop-prod:");
    // Moving the cache restarts the code (its .env changes); its version alone does not.
    let (_, r1) = deploy(&e, None);
    let moved = env(&ENV.replace("cache.internal:6380", "cache2.internal:6380"));
    let p = plan(&moved, Some(&r1), &hosts(), &[]).unwrap();
    let bumped: Vec<String> = p.bumps.iter().map(|b| b.component.to_string()).collect();
    assert_eq!(bumped, ["code:jobs", "code:web", "cache"]);
}

#[test]
fn admin_connections_carry_no_password() {
    for bad in [
        "postgresql://admin:secret@db/postgres",
        "postgresql://db/postgres",
        "postgresql://admin@db/postgres?password=x",
        "mysql://admin@db/x",
        "postgresql://ad min@db/x",
    ] {
        let text = ENV.replace(
            "postgresql://admin@db.internal:5433/postgres?sslmode=require",
            bad,
        );
        let err = parse_environment("env.yml", &text).unwrap_err().to_string();
        assert!(
            err.contains("field 'databases.main.server'"),
            "{bad}: {err}"
        );
        // Issue 19 item 8: a refused password is never echoed back.
        assert!(
            !err.contains("secret") && !err.contains("password=x"),
            "{err}"
        );
    }
    let err = parse_environment(
        "env.yml",
        &ENV.replace("redis://cache", "redis://u:hunter2@cache"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("field 'cache.url'") && err.contains("no credentials"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
    let err = parse_environment(
        "env.yml",
        &ENV.replace(
            "    start: python3 app.py\n",
            "    start: python3 app.py\n    env:\n      REDIS_URL: x\n",
        ),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("set by the deployer"), "{err}");
}

#[test]
fn pruning_keeps_the_new_instance_and_the_one_it_replaced() {
    let e = env(ENV);
    let (_, r1) = deploy(&e, None);
    let v2 = env(&ENV.replace("revision: v1", "revision: v2"));
    let (_, r2) = deploy(&v2, Some(&r1));
    let v3 = env(&ENV.replace("revision: v1", "revision: v3"));
    let p3 = plan(&v3, Some(&r2), &hosts(), &[]).unwrap();
    let web = p3.hosts[0]
        .services
        .iter()
        .find(|s| s.name.as_str() == "web")
        .unwrap();
    assert_eq!(kept_instances(web).into_iter().collect::<Vec<_>>(), [2, 3]);
    let change = compile_host(&v3, &p3, &p3.hosts[0], Duties::default());
    let Some(Action::Run {
        command: Command::Shell(prune),
        undo,
        ..
    }) = change
        .steps
        .iter()
        .find(|s| s.name == "prune old instances of web")
        .map(|s| &s.action)
    else {
        panic!()
    };
    assert!(undo.is_none());
    assert!(
        prune.contains("case ' 3 2 ' in") || prune.contains("case ' 2 3 ' in"),
        "{prune}"
    );
    // A first deploy keeps its one instance.
    let (p1, _) = deploy(&e, None);
    assert_eq!(
        kept_instances(&p1.hosts[0].services[0])
            .into_iter()
            .collect::<Vec<_>>(),
        [1]
    );
}

#[test]
fn systemd_runs_instances_only_where_it_is_pid_1_on_the_whole_machine() {
    use crate::Supervisor;
    assert_eq!(Supervisor::choose(true, "/"), Supervisor::Systemd);
    assert_eq!(Supervisor::choose(true, ""), Supervisor::Systemd);
    assert_eq!(Supervisor::choose(false, "/"), Supervisor::Detached);
    assert_eq!(
        Supervisor::choose(true, "/tmp/hosts/web-1/root"),
        Supervisor::Detached
    );
    // The host-side script makes the same choice.
    assert!(crate::scripts::SUPERVISE
        .contains(r#"[ -d /run/systemd/system ] && [ -z "${VIGIE_HOST_ROOT%/}" ]"#));

    let e = env(ENV);
    let (p1, _) = deploy(&e, None);
    let web = p1.hosts[0]
        .services
        .iter()
        .find(|s| s.name.as_str() == "web")
        .unwrap();
    assert_eq!(
        crate::unit_template(&e.key, &web.name, 1),
        "auto-shop-prod-web-1@.service"
    );
    let text = crate::unit_text(&e.key, &web.name, 1, &web.spec);
    for line in [
        "WorkingDirectory=/srv/services/auto-shop-prod-web/1/src",
        "EnvironmentFile=/srv/services/auto-shop-prod-web/1/replica-%i/env",
        "ExecStart=/bin/sh /srv/services/auto-shop-prod-web/1/start",
        "KillSignal=SIGTERM",
        "TimeoutStopSec=10.000",
        "Restart=always",
        "WantedBy=multi-user.target",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    // Every deploy writes it beside the instance's code.
    let change = compile_host(&e, &p1, &p1.hosts[0], Duties::default());
    assert!(names(&change).contains(&"systemd unit of web #1".to_string()));
}
