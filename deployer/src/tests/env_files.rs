//! environment.yml: what is accepted, and how refusals name the place.

use crate::{parse_environment, DeployError, Role};

pub(crate) const SHOP: &str = "\
app: shop
environment: prod
hosts: role=web
ports: 21000-21099
services:
  web:
    repository: /srv/git/shop.git
    revision: v1
    install: ./install.sh
    start: python3 app.py
    replicas: 2
    health:
      http: /health
      retries: 20
      interval: 100ms
    stop_grace: 3s
    drain: 200ms
    env:
      GREETING: hello
  jobs:
    type: worker
    repository: /srv/git/shop.git
    revision: v1
    start: python3 worker.py
databases:
  main:
    engine: postgresql
cache:
  engine: redis
migrations:
  service: web
  pending: ./migrate.sh --pending
  apply: ./migrate.sh
";

fn err(text: &str) -> String {
    match parse_environment("env.yml", text) {
        Ok(env) => panic!("accepted: {env:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn reads_a_whole_environment_with_defaults() {
    let env = parse_environment("env.yml", SHOP).unwrap();
    assert_eq!(env.key.stem(), "auto-shop-prod");
    let web = &env.services[&crate::Part::parse("web").unwrap()];
    assert_eq!(web.role, Role::Web);
    assert_eq!(web.replicas, 2);
    assert_eq!(web.health.as_ref().unwrap().interval_ms, 100);
    assert_eq!(
        web.health.as_ref().unwrap().timeout_ms,
        crate::spec::DEFAULT_HEALTH_TIMEOUT_MS
    );
    let jobs = &env.services[&crate::Part::parse("jobs").unwrap()];
    assert_eq!((jobs.role, jobs.replicas), (Role::Worker, 1));
    assert_eq!(jobs.stop_grace_ms, crate::DEFAULT_STOP_GRACE_MS);
    assert_eq!(env.ports.to_string(), "21000-21099");
    assert_eq!(env.databases.len(), 1);
    assert!(env.cache.is_some() && env.migrations.is_some());
}

#[test]
fn unknown_keys_are_refused_with_their_place() {
    let text = SHOP.replace("    replicas: 2\n", "    replicas: 2\n    replica: 3\n");
    let e = err(&text);
    assert!(
        e.starts_with("env.yml:12:5: field 'services.web.replica'"),
        "{e}"
    );
    assert!(e.contains("unknown field `replica`"), "{e}");
}

#[test]
fn bad_values_name_their_line_and_field() {
    let cases = [
        (
            "replicas: 2",
            "replicas: 0",
            "env.yml:11:15: field 'services.web.replicas'",
            "replicas",
        ),
        (
            "app: shop",
            "app: Shop",
            "env.yml:1:6: field 'app'",
            "not a name",
        ),
        (
            "ports: 21000-21099",
            "ports: 80-90",
            "env.yml:4:8: field 'ports'",
            "1024-65535",
        ),
        (
            "interval: 100ms",
            "interval: 100",
            "env.yml:15:17: field 'services.web.health.interval'",
            "invalid duration",
        ),
        (
            "revision: v1\n    install",
            "revision: --upload-pack=x\n    install",
            "env.yml:8:15: field 'services.web.revision'",
            "'-'",
        ),
        (
            "GREETING: hello",
            "PORT: 1",
            "env.yml:19:7: field 'services.web.env.PORT'",
            "set by the deployer",
        ),
        (
            "engine: redis",
            "engine: memcached",
            "env.yml:29:11: field 'cache.engine'",
            "unknown variant",
        ),
    ];
    for (from, to, place, says) in cases {
        let e = err(&SHOP.replacen(from, to, 1));
        assert!(e.starts_with(place), "{to}: {e}");
        assert!(e.contains(says), "{to}: {e}");
    }
}

#[test]
fn missing_and_cross_field_rules() {
    let e = err(&SHOP.replace("    start: python3 app.py\n", ""));
    assert!(e.contains("field 'services.web.start': is required"), "{e}");
    let e = err(&SHOP.replace("  service: web\n", "  service: api\n"));
    assert!(e.contains("field 'migrations.service'"), "{e}");
    let no_health = SHOP.replace(
        "    health:\n      http: /health\n      retries: 20\n      interval: 100ms\n",
        "",
    );
    let e = err(&no_health);
    assert!(
        e.contains("field 'services.web.health': a web service needs a health check"),
        "{e}"
    );
    let e = err(&SHOP.replace("hosts: role=web", "hosts: 'web-*,'"));
    assert!(e.contains("field 'hosts'"), "{e}");
}

#[test]
fn syntax_errors_and_wrong_shapes() {
    let e = err("app: [shop\n");
    assert!(
        e.starts_with("env.yml:") && e.contains("invalid YAML"),
        "{e}"
    );
    let e = err("- a\n- b\n");
    assert!(e.contains("is a mapping"), "{e}");
    assert!(matches!(
        parse_environment("x", &"#".repeat(crate::MAX_ENV_FILE + 1)),
        Err(DeployError::TooLarge { .. })
    ));
}

/// Issue 19 item 8: a service named twice is refused pointing at the
/// second one (the one to remove or rename), not at the first.
#[test]
fn a_duplicate_service_is_refused_where_it_is_repeated() {
    let text = "app: shop\nenvironment: prod\nhosts: role=web\nservices:\n  jobs:\n    type: worker\n    repository: /r\n    revision: v1\n    start: w\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    health: { http: /h }\n  # the same again\n  web:\n    repository: /r\n    revision: v2\n    start: run\n    health: { http: /h }\n";
    let err = parse_environment("env.yml", text).unwrap_err().to_string();
    assert!(err.starts_with("env.yml:16:3: "), "{err}");
    assert!(err.contains("duplicate entry with key \"web\""), "{err}");
}
