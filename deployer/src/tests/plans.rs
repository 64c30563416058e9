//! Instance numbers and host plans: seed 001's table, ports, collisions.

use std::collections::BTreeMap;

use super::{deploy, env, hosts};
use crate::inventory::{Component, EnvRecord, Outcome};
use crate::plan::{plan, settle};
use crate::{DeployError, Part};

const BASE: &str = "\
app: shop
environment: prod
hosts: web-*
ports: 21000-21009
services:
  node:
    repository: /git/shop.git
    revision: v1
    start: python3 app.py
    replicas: 2
    health:
      http: /health
databases:
  mysql:
    engine: postgresql
cache:
  engine: redis
";

fn instances(record: &EnvRecord) -> (u32, u32, u32) {
    let get = |c: &Component| record.components[c].instance;
    (
        get(&Component::Code(Part::parse("node").unwrap())),
        get(&Component::Database(Part::parse("mysql").unwrap())),
        get(&Component::Cache),
    )
}

#[test]
fn instance_numbers_follow_the_seed_table() {
    // deploy 1: everything new.
    let (p1, r1) = deploy(&env(BASE), None);
    assert_eq!(p1.bumps.len(), 3);
    assert_eq!(instances(&r1), (1, 1, 1));
    // deploy 2: the code changes.
    let v2 = BASE.replace("revision: v1", "revision: v2");
    let (p2, r2) = deploy(&env(&v2), Some(&r1));
    assert_eq!(p2.bumps.len(), 1);
    assert_eq!(instances(&r2), (2, 1, 1));
    // deploy 3: code and database change.
    let v3 = v2.replace("revision: v2", "revision: v3").replace(
        "engine: postgresql",
        "engine: postgresql\n    version: '16'",
    );
    let (p3, r3) = deploy(&env(&v3), Some(&r2));
    assert_eq!(p3.bumps.len(), 2);
    assert_eq!(instances(&r3), (3, 2, 1));
    // deploy 4: only the cache.
    let v4 = v3.replace("engine: redis", "engine: redis\n  version: '7'");
    let (p4, r4) = deploy(&env(&v4), Some(&r3));
    assert_eq!(p4.bumps.len(), 1);
    assert_eq!(p4.bumps[0].component, Component::Cache);
    assert!(p4.busy_hosts().next().is_none(), "no code to roll: {p4:?}");
    assert_eq!(instances(&r4), (3, 2, 2));
    // The same spec again: nothing bumped, nothing to do.
    let (p5, r5) = deploy(&env(&v4), Some(&r4));
    assert!(p5.bumps.is_empty() && p5.busy_hosts().next().is_none());
    assert_eq!(r5.history.len(), 5);
    assert_eq!(r5.history[2].bumped.len(), 2);
}

#[test]
fn new_instances_take_fresh_ports_and_the_proxy_keeps_its_own() {
    let (p1, r1) = deploy(&env(BASE), None);
    let h1 = &p1.hosts[0];
    assert_eq!(h1.proxy_port, 21000);
    assert_eq!(h1.services[0].ports, vec![21001, 21002]);
    assert!(h1.services[0].previous.is_none());
    let (p2, r2) = deploy(&env(&BASE.replace("v1", "v2")), Some(&r1));
    let h2 = &p2.hosts[0];
    assert_eq!(h2.proxy_port, 21000);
    // Old and new run side by side: the new ports avoid the old ones.
    assert_eq!(h2.services[0].ports, vec![21003, 21004]);
    assert_eq!(
        h2.services[0].previous.as_ref().unwrap().ports,
        vec![21001, 21002]
    );
    // Once the old instance is gone its ports are free again.
    let (p3, _) = deploy(&env(&BASE.replace("v1", "v3")), Some(&r2));
    assert_eq!(p3.hosts[0].services[0].ports, vec![21001, 21002]);
}

#[test]
fn an_exhausted_range_is_refused_naming_the_host() {
    let small = BASE.replace("21000-21009", "21000-21002");
    let (_, r1) = deploy(&env(&small), None);
    let err = plan(&env(&small.replace("v1", "v2")), Some(&r1), &hosts(), &[]).unwrap_err();
    assert!(matches!(err, DeployError::PortsExhausted { .. }), "{err}");
    assert!(err.to_string().contains("host web-1"), "{err}");
}

#[test]
fn another_environments_ports_and_names_are_respected() {
    let (_, staging) = deploy(&env(&BASE.replace("prod", "staging")), None);
    let p = plan(&env(BASE), None, &hosts(), std::slice::from_ref(&staging)).unwrap();
    assert_eq!(p.hosts[0].proxy_port, 21003);
    // shop-prod + service "x" and shop + environment "prod-x" would share a directory.
    let clash = BASE.replace(
        "app: shop\nenvironment: prod",
        "app: shop\nenvironment: prod-node",
    );
    let (_, other) = deploy(&env(&clash.replace("  node:", "  web:")), None);
    let err = plan(&env(BASE), None, &hosts(), &[other]).unwrap_err();
    assert!(matches!(err, DeployError::Collision { .. }), "{err}");
    assert!(err.to_string().contains("auto-shop-prod-node"), "{err}");
}

#[test]
fn a_host_that_rolled_back_is_rolled_again_by_the_next_deploy() {
    let e1 = env(BASE);
    let (_, r1) = deploy(&e1, None);
    let e2 = env(&BASE.replace("v1", "v2"));
    let p2 = plan(&e2, Some(&r1), &hosts(), &[]).unwrap();
    let results: BTreeMap<String, (String, bool)> = [
        ("web-1".to_string(), ("c7".to_string(), true)),
        ("web-2".to_string(), ("c8".to_string(), false)),
    ]
    .into();
    let r2 = settle(Some(&r1), &p2, &e2, &results);
    assert_eq!(r2.history.last().unwrap().outcome, Outcome::RolledBack);
    let node = Part::parse("node").unwrap();
    assert_eq!(r2.hosts["web-1"].services[&node].instance, 2);
    assert_eq!(r2.hosts["web-2"].services[&node].instance, 1);
    let p3 = plan(&e2, Some(&r2), &hosts(), &[]).unwrap();
    assert!(p3.bumps.is_empty());
    let busy: Vec<&str> = p3.busy_hosts().map(|h| h.host.as_str()).collect();
    assert_eq!(busy, ["web-2"]);
    // Every host rolled back: no component moves.
    let all_failed: BTreeMap<String, (String, bool)> = [
        ("web-1".to_string(), ("c7".to_string(), false)),
        ("web-2".to_string(), ("c8".to_string(), false)),
    ]
    .into();
    let r = settle(Some(&r1), &p2, &e2, &all_failed);
    assert_eq!(instances(&r), (1, 1, 1));
    assert!(r.history.last().unwrap().bumped.is_empty());
}

#[test]
fn the_record_survives_its_storage_form() {
    let (_, r1) = deploy(&env(BASE), None);
    let back = EnvRecord::from_json(&r1.to_json().unwrap()).unwrap();
    assert_eq!(back, r1);
    assert!(EnvRecord::from_json(b"{").is_err());
}

#[test]
fn a_host_the_deploy_never_reached_keeps_what_it_ran() {
    let e1 = env(BASE);
    let (_, r1) = deploy(&e1, None);
    let e2 = env(&BASE.replace("v1", "v2"));
    let p2 = plan(&e2, Some(&r1), &hosts(), &[]).unwrap();
    // web-1 rolled back, so web-2 was never sent its change.
    let results: BTreeMap<String, (String, bool)> =
        [("web-1".to_string(), ("c7".to_string(), false))].into();
    let r2 = settle(Some(&r1), &p2, &e2, &results);
    assert_eq!(r2.hosts, r1.hosts);
    assert_eq!(r2.components, r1.components);
    assert_eq!(r2.history.last().unwrap().changes.len(), 1);
}

#[test]
fn a_host_left_in_maintenance_is_recorded_until_a_deploy_upgrades_it() {
    let e1 = env(BASE);
    let (_, mut r1) = deploy(&e1, None);
    // A record written before this field existed reads as "not in maintenance".
    let old = String::from_utf8(r1.to_json().unwrap())
        .unwrap()
        .replace(",\"maintenance\":false", "");
    assert!(!old.contains("\"maintenance\""), "{old}");
    assert!(EnvRecord::from_json(old.as_bytes())
        .unwrap()
        .in_maintenance()
        .is_empty());
    r1.hosts.get_mut("web-2").unwrap().maintenance = true;
    assert_eq!(r1.in_maintenance(), ["web-2"]);
    let back = EnvRecord::from_json(&r1.to_json().unwrap()).unwrap();
    assert_eq!(back.in_maintenance(), ["web-2"]);
    // Nothing new to roll, yet web-2 has its replicas to start again.
    let (same, r) = deploy(&e1, Some(&r1));
    let busy: Vec<&str> = same.busy_hosts().map(|h| h.host.as_str()).collect();
    assert_eq!(busy, ["web-2"]);
    assert!(r.in_maintenance().is_empty(), "{r:?}");
    let e2 = env(&BASE.replace("v1", "v2"));
    let (_, r2) = deploy(&e2, Some(&r1));
    assert!(r2.in_maintenance().is_empty(), "{r2:?}");
}

#[test]
fn a_new_database_is_said_once_by_the_plan() {
    let e1 = env(BASE);
    let (p1, r1) = deploy(&e1, None);
    assert!(p1.adds_database());
    let (p2, _) = deploy(&env(&BASE.replace("v1", "v2")), Some(&r1));
    assert!(!p2.adds_database());
    let more = BASE.replace(
        "databases:\n  mysql:\n    engine: postgresql\n",
        "databases:\n  mysql:\n    engine: postgresql\n  extra:\n    engine: postgresql\n",
    );
    assert_ne!(more, BASE);
    let (p3, _) = deploy(&env(&more), Some(&r1));
    assert!(p3.adds_database());
}

#[test]
fn only_the_run_that_wrote_an_in_progress_entry_may_rewrite_it() {
    use crate::inventory::{may_record, Conflict};
    let (_, r1) = deploy(&env(BASE), None);
    let e2 = env(&BASE.replace("v1", "v2"));
    let p2 = plan(&e2, Some(&r1), &hosts(), &[]).unwrap();
    let in_progress = |run: &str, outcome: Outcome| {
        let mut r = settle(Some(&r1), &p2, &e2, &BTreeMap::new());
        let last = r.history.last_mut().unwrap();
        last.outcome = outcome;
        last.run = Some(run.to_string());
        r
    };
    let mine = in_progress("a", Outcome::InProgress);
    // Appending after what was planned on: allowed.
    assert_eq!(may_record(Some(&r1), 1, &mine), Ok(()));
    // The same run rewrites its entry, in progress or final.
    assert_eq!(may_record(Some(&mine), 1, &mine), Ok(()));
    let done = in_progress("a", Outcome::Succeeded);
    assert_eq!(may_record(Some(&mine), 1, &done), Ok(()));
    // Another run planned on the same state, or a rewrite of a finished
    // entry, is a conflict.
    let theirs = in_progress("b", Outcome::InProgress);
    let conflict = Err(Conflict {
        stored: 2,
        expected: 1,
    });
    assert_eq!(may_record(Some(&mine), 1, &theirs), conflict);
    assert_eq!(may_record(Some(&done), 1, &done), conflict);
    // A rewrite may not change the entries before it.
    let mut forged = mine.clone();
    forged.history[0].number = 9;
    assert_eq!(may_record(Some(&mine), 1, &forged), conflict);
    // A first record needs nothing stored.
    assert_eq!(may_record(None, 0, &r1), Ok(()));
    assert!(may_record(None, 1, &r1).is_err());
}

/// `web-1`, `web-2` and `web-3`: the first two at 127.0.0.2 (their
/// `address` label), the third at 127.0.0.3.
fn local_hosts() -> Vec<crate::Target> {
    [
        ("web-1", "127.0.0.2"),
        ("web-2", "127.0.0.2"),
        ("web-3", "127.0.0.3"),
    ]
    .map(|(id, at)| {
        let labels = BTreeMap::from([("address".to_owned(), at.to_owned())]);
        crate::Target::from_labels(id, &labels).unwrap()
    })
    .to_vec()
}

/// Every port a host plan listens on.
fn ports_of(h: &crate::HostPlan) -> std::collections::BTreeSet<u16> {
    h.services
        .iter()
        .flat_map(|s| s.ports.clone())
        .chain(h.steady.values().flat_map(|p| p.ports.clone()))
        .chain([h.proxy_port])
        .collect()
}

/// Issue 19: two local hosts of one machine got the same ports. Hosts
/// whose `address` label is the same take ports apart, on a first deploy
/// and on the next (the old instance's ports still held while the new
/// starts); a host at another address, or hosts without the label (each
/// its own loopback), may reuse them.
#[test]
fn hosts_at_one_address_take_ports_apart() {
    let v1 = env(BASE);
    let hosts = local_hosts();
    let p = plan(&v1, None, &hosts, &[]).unwrap();
    let (a, b, c) = (
        ports_of(&p.hosts[0]),
        ports_of(&p.hosts[1]),
        ports_of(&p.hosts[2]),
    );
    assert_eq!(a.len(), 3, "proxy and two replicas: {a:?}");
    assert!(
        a.is_disjoint(&b),
        "web-1 {a:?} and web-2 {b:?} share 127.0.0.2"
    );
    assert_eq!(a, c, "web-3 is at another address: the lowest ports");
    let results: BTreeMap<String, (String, bool)> = p
        .hosts
        .iter()
        .map(|h| (h.host.clone(), (format!("c-{}", h.host), true)))
        .collect();
    let r1 = settle(None, &p, &v1, &results);
    let v2 = env(&BASE.replace("v1", "v2"));
    let p2 = plan(&v2, Some(&r1), &hosts, &[]).unwrap();
    let (a2, b2) = (ports_of(&p2.hosts[0]), ports_of(&p2.hosts[1]));
    assert!(a2.is_disjoint(&b2), "{a2:?} {b2:?}");
    assert!(
        a2.is_disjoint(&b) && b2.is_disjoint(&a),
        "the old instances still listen"
    );
    // Without the label, two hosts are two machines: ports are reused.
    let p = plan(&v1, None, &super::hosts(), &[]).unwrap();
    assert_eq!(ports_of(&p.hosts[0]), ports_of(&p.hosts[1]));
}

/// Issue 19: an inventory from before, where two hosts at one address
/// were placed on one port, is refused at plan, naming both hosts, the
/// address and the port; nothing is planned over it.
#[test]
fn hosts_at_one_address_placed_on_one_port_are_refused_by_name() {
    let v1 = env(BASE);
    let (_, r1) = deploy(&v1, None);
    let hosts: Vec<_> = local_hosts().into_iter().take(2).collect();
    let r1_proxy = r1.hosts["web-1"].proxy_port.unwrap();
    assert_eq!(
        r1.hosts["web-2"].proxy_port,
        Some(r1_proxy),
        "placed on one port"
    );
    let e = plan(&env(&BASE.replace("v1", "v2")), Some(&r1), &hosts, &[]).unwrap_err();
    assert!(
        matches!(&e, DeployError::SharedAddress { first, second, port, .. }
            if first == "web-1" && second == "web-2" && *port == r1_proxy),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("hosts web-1 and web-2 share the address 127.0.0.2")
            && text.contains(&format!("port {r1_proxy}")),
        "{text}"
    );
}
