//! Issue 19: two local hosts of one machine (the same `address` label)
//! got the same ports, unwarned. Through the real CLI and tower: their
//! plan gives them ports apart (a third host at another address reuses
//! the lowest); an inventory from before, placing both on one port, is
//! refused at `--plan` and by the tower's deploy, naming both hosts, the
//! address and the port, and nothing is sent to a host.

use std::collections::{BTreeMap, BTreeSet};

use vigie_deployer::{EnvKey, EnvRecord, HostState, Part, Placement};
use vigie_tests::front::admin;
use vigie_tests::{Launcher, Setup};
use vigie_wire::deploy::DeployCall;
use vigie_wire::tower::{ApiAnswer, ApiCall};

const ENV: &str = "\
app: shop
environment: prod
hosts: role=local
ports: 27600-27699
services:
  web:
    repository: /nowhere/shop.git
    revision: v1
    start: python3 app.py
    replicas: 2
    health:
      http: /health
";

fn text(o: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Each host's ports in a `deploy --plan`'s text: its proxy's and its
/// new replicas'.
fn planned_ports(plan: &str) -> BTreeMap<String, BTreeSet<u16>> {
    let mut out: BTreeMap<String, BTreeSet<u16>> = BTreeMap::new();
    let mut host = String::new();
    for line in plan.lines() {
        if let Some((h, rest)) = line.trim().split_once(": proxy ") {
            host = h.to_owned();
            let port = rest
                .split([':', ','])
                .nth(1)
                .and_then(|p| p.parse::<u16>().ok());
            out.entry(host.clone()).or_default().extend(port);
        } else if let Some((_, rest)) = line.split_once(", ports ") {
            let ports = rest.split(',').map_while(|p| p.trim().parse::<u16>().ok());
            out.entry(host.clone()).or_default().extend(ports);
        }
    }
    out
}

/// What an earlier Vigie recorded: both local hosts' proxies on 27600.
fn clashing_record() -> anyhow::Result<EnvRecord> {
    let part = |s: &str| Part::parse(s).map_err(anyhow::Error::msg);
    let mut record = EnvRecord::new(EnvKey {
        app: part("shop")?,
        environment: part("prod")?,
    });
    for host in ["local-1", "local-2"] {
        let placed = Placement {
            instance: 1,
            replicas: 2,
            ports: vec![27601, 27602],
        };
        let state = HostState {
            proxy_port: Some(27600),
            services: BTreeMap::from([(part("web")?, placed)]),
            ..HostState::default()
        };
        record.hosts.insert(host.into(), state);
    }
    record.history.push(vigie_deployer::DeployRecord {
        number: 1,
        bumped: Vec::new(),
        changes: Default::default(),
        outcome: vigie_deployer::Outcome::Succeeded,
        maintenance: false,
        run: None,
        at_ms: None,
        operator: None,
        revisions: Default::default(),
        version: None,
        verb: None,
    });
    Ok(record)
}

#[test]
fn hosts_at_one_address_get_ports_apart_or_a_refusal_naming_them() -> anyhow::Result<()> {
    let t = Launcher::start(
        Setup::new("shared")
            .host("local-1", &[("role", "local"), ("address", "127.0.0.30")])
            .host("local-2", &[("role", "local"), ("address", "127.0.0.30")])
            .host("local-3", &[("role", "local"), ("address", "127.0.0.31")]),
    )?;
    let file = t.dir.path().join("environment.yml");
    std::fs::write(&file, ENV)?;
    let file = file.display().to_string();

    let out = t.cli(&["deploy", &file, "--plan"])?;
    anyhow::ensure!(out.status.success(), "{}", text(&out));
    let ports = planned_ports(&String::from_utf8_lossy(&out.stdout));
    let (one, two, three) = (&ports["local-1"], &ports["local-2"], &ports["local-3"]);
    assert_eq!(one.len(), 3, "proxy and two replicas: {}", text(&out));
    assert!(
        one.is_disjoint(two),
        "local-1 {one:?} and local-2 {two:?} share 127.0.0.30"
    );
    assert_eq!(one, three, "local-3 is at another address");

    // An inventory from before the fix: both local hosts on port 27600.
    let record = clashing_record()?;
    let stored = admin(&t, None)?.call(ApiCall::Deploy(DeployCall::Record {
        app: "shop".into(),
        environment: "prod".into(),
        expected: 0,
        record: record.to_json()?,
    }))?;
    assert!(matches!(stored, ApiAnswer::Deploy(_)), "{stored:?}");
    let refusal = "hosts local-1 and local-2 share the address 127.0.0.30 and would both listen on port 27600";
    let out = t.cli(&["deploy", &file, "--plan"])?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(refusal), "{}", text(&out));
    // The tower's deploy refuses the same at its plan, before any change.
    let out = t.cli(&["deploy", &file])?;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(refusal), "{}", text(&out));
    let sent = t.api()?.changes(ApiCall::Status {
        change: None,
        limit: 100,
    })?;
    assert!(sent.is_empty(), "changes sent: {sent:?}");
    let now = vigie_tests::deploys::record(&t, "shop", "prod")?;
    assert_eq!(now.hosts, record.hosts, "the inventory is as it was");
    Ok(())
}
