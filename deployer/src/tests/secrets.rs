//! Secrets in an environment: read by name, pinned by version into the
//! plan (a rotation bumps the service), compiled into a step that names
//! them and holds no value; one not set refuses the deploy by name.

use std::collections::BTreeMap;

use vigie_wire::change::Action;

use crate::{compile_host, components_of, parse_environment, DeployError, Duties, EnvValue};

const ENV: &str = "\
app: shop
environment: prod
hosts: web-*
services:
  web:
    repository: /git/shop.git
    revision: v1
    start: python3 app.py
    health:
      http: /health
    env:
      GREETING: hello
      DB_PASSWORD: { secret: db_password }
";

fn versions(v: u32) -> BTreeMap<String, u32> {
    [("db_password".to_string(), v)].into()
}

#[test]
fn an_env_value_may_name_a_secret() {
    let env = super::env(ENV);
    assert_eq!(
        env.secret_names().into_iter().collect::<Vec<_>>(),
        ["db_password"]
    );
    let web = env.services.values().next().unwrap();
    assert_eq!(web.env["GREETING"], EnvValue::Plain("hello".into()));
    let bad = ENV.replace("{ secret: db_password }", "{ secret: Not-A-Name }");
    let e = parse_environment("env.yml", &bad).unwrap_err().to_string();
    assert!(e.starts_with("env.yml:13:"), "{e}");
    assert!(e.contains("not a secret name"), "{e}");
    let bad = ENV.replace("{ secret: db_password }", "{ value: x }");
    let e = parse_environment("env.yml", &bad).unwrap_err().to_string();
    assert!(e.contains("a secret is { secret: NAME }"), "{e}");
}

#[test]
fn a_secret_not_set_refuses_the_plan_by_name() {
    let env = super::env(ENV);
    let e = env.pin_secrets(&BTreeMap::new()).unwrap_err();
    assert!(matches!(e, DeployError::SecretNotSet { ref name, .. } if name == "db_password"));
    assert!(
        e.to_string()
            .contains("vigie secrets set shop/prod db_password"),
        "{e}"
    );
}

#[test]
fn a_new_version_bumps_the_service_that_reads_it() {
    let env = super::env(ENV);
    let one = components_of(&env.pin_secrets(&versions(1)).unwrap());
    let same = components_of(&env.pin_secrets(&versions(1)).unwrap());
    let two = components_of(&env.pin_secrets(&versions(2)).unwrap());
    assert_eq!(one, same);
    assert_ne!(one, two);
    // A spec without secrets digests as before secrets existed: plain
    // values serialise as bare text.
    let plain = serde_json::to_string(&EnvValue::Plain("hello".into())).unwrap();
    assert_eq!(plain, "\"hello\"");
}

#[test]
fn the_env_step_names_the_secrets_and_holds_no_value() {
    let env = super::env(ENV).pin_secrets(&versions(3)).unwrap();
    let (p, _) = super::deploy(&env, None);
    let host = p.busy_hosts().next().unwrap();
    let spec = compile_host(&env, &p, host, Duties::of_host(&env, 0, false));
    let files: Vec<&Action> = spec
        .steps
        .iter()
        .map(|s| &s.action)
        .filter(|a| matches!(a, Action::SecretFile { .. }))
        .collect();
    assert_eq!(files.len(), 1, "{spec:#?}");
    let Action::SecretFile {
        path,
        environment,
        content,
        secrets,
    } = files[0]
    else {
        unreachable!()
    };
    assert!(path.ends_with("/replica-1/env"), "{path}");
    assert_eq!(environment, "shop/prod");
    let text = String::from_utf8_lossy(content);
    assert!(
        text.contains("GREETING='hello'") && !text.contains("DB_PASSWORD"),
        "{text}"
    );
    assert_eq!(secrets.len(), 1);
    assert_eq!(
        (secrets[0].var.as_str(), secrets[0].name.as_str()),
        ("DB_PASSWORD", "db_password")
    );
    assert_eq!(secrets[0].version, 3);
    assert!(
        secrets[0].sealed.is_empty(),
        "sealed by the referee, not here"
    );
}
