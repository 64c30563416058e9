//! `overrides:`: per-host and per-label replicas and env, later entries
//! winning, shown in the plan, part of the code's digest only when there.

use std::collections::BTreeMap;

use crate::plan::plan;
use crate::{components_of, env_file, parse_environment, Target};

const ENV: &str = "app: shop\nenvironment: prod\nhosts: 'role=shop'\nports: 21000-21099\nservices:\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    replicas: 2\n    env:\n      MODE: normal\n    health:\n      http: /h\n";

fn target(id: &str, role: &str, size: &str) -> Target {
    let labels: BTreeMap<String, String> = [
        ("role".to_string(), role.to_string()),
        ("size".to_string(), size.to_string()),
    ]
    .into();
    Target::from_labels(id, &labels).unwrap()
}

#[test]
fn a_label_or_a_host_gets_its_own_replicas_and_env_the_last_entry_winning() {
    let text = format!(
        "{ENV}overrides:\n  - hosts: 'size=big'\n    replicas: 4\n    env:\n      MODE: big\n      WORKERS: '8'\n  - hosts: web-3\n    service: web\n    replicas: 1\n"
    );
    let env = parse_environment("e", &text).unwrap();
    let hosts = [
        target("web-1", "shop", "small"),
        target("web-2", "shop", "big"),
        target("web-3", "shop", "big"),
    ];
    let p = plan(&env, None, &hosts, &[]).unwrap();
    let replicas: Vec<(usize, u32)> = p
        .hosts
        .iter()
        .map(|h| (h.services[0].ports.len(), h.services[0].spec.replicas))
        .collect();
    assert_eq!(replicas, [(2, 2), (4, 4), (1, 1)]);
    assert!(p.hosts[0].overrides.is_empty());
    assert_eq!(
        p.hosts[1].overrides,
        ["web: replicas 4, env MODE, WORKERS (size=big)"]
    );
    assert_eq!(p.hosts[2].overrides.len(), 2, "{:?}", p.hosts[2].overrides);
    let big = env_file(
        &env,
        &p.hosts[1].services[0],
        hosts[1].address,
        1,
        Some(21000),
    );
    assert!(
        big.contains("MODE='big'") && big.contains("WORKERS='8'"),
        "{big}"
    );
    let small = env_file(
        &env,
        &p.hosts[0].services[0],
        hosts[0].address,
        1,
        Some(21000),
    );
    assert!(
        small.contains("MODE='normal'") && !small.contains("WORKERS"),
        "{small}"
    );

    // Adding an override restarts the service (its digest moves); an
    // environment without any keeps the digest it always had.
    let plain = parse_environment("e", ENV).unwrap();
    assert_ne!(components_of(&plain), components_of(&env));
}

#[test]
fn an_override_of_no_service_or_of_the_deployers_own_variables_is_refused() {
    for (extra, field) in [
        (
            "  - hosts: web-1\n    service: api\n    replicas: 2\n",
            "overrides[0].service",
        ),
        (
            "  - hosts: web-1\n    env:\n      PORT: '80'\n",
            "overrides[0].env",
        ),
        ("  - hosts: web-1\n", "overrides[0].hosts"),
        (
            "  - hosts: web-1\n    replicas: 2\n    memory: 2G\n",
            "overrides[0]",
        ),
    ] {
        let text = format!("{ENV}overrides:\n{extra}");
        let err = parse_environment("e", &text).unwrap_err().to_string();
        assert!(err.contains(&format!("field '{field}")), "{field}: {err}");
    }
}
