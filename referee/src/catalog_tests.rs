//! The catalogs on the in-memory store (`shell/mem_store.rs`, with
//! Escalator's batch limits): an import is all or nothing, an address is
//! decided once even within one turn, and both survive a restart of the
//! referee's state.

use std::time::{Duration, Instant};

use vigie_wire::catalog::{CatalogAnswer, CatalogCall, ImportRow, Owner, PoolSpec};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind, Caller};

use crate::core::state::{Core, Timing};
use crate::core::turn::Turn;
use crate::shell::store::Store;

const TIMING: Timing = Timing {
    host_timeout: Duration::from_secs(3),
    resend_after: Duration::from_secs(1),
};

struct Fixture {
    store: crate::shell::test_store::TestStore,
    tower: Core,
}

fn fixture() -> Fixture {
    let store = crate::shell::test_store::store();
    Fixture {
        tower: store.tower(),
        store,
    }
}

fn acme() -> Caller {
    Caller::internal("acme", "ops")
}

impl Fixture {
    /// Calls in one turn, then stores the turn.
    fn turn(
        &mut self,
        caller: &Caller,
        calls: Vec<CatalogCall>,
    ) -> Vec<Result<CatalogAnswer, ApiFault>> {
        let mut t = Turn::started();
        let out = calls
            .into_iter()
            .map(|c| {
                crate::shell::history::api(
                    &mut self.tower,
                    caller,
                    ApiCall::Catalog(c),
                    &self.store.db,
                    Instant::now(),
                    &mut t,
                )
                .map(|a| match a {
                    ApiAnswer::Catalog(c) => c,
                    other => panic!("{other:?}"),
                })
            })
            .collect();
        self.store.commit(&mut self.tower, &mut t);
        out
    }

    fn one(&mut self, caller: &Caller, call: CatalogCall) -> Result<CatalogAnswer, ApiFault> {
        self.turn(caller, vec![call]).remove(0)
    }

    fn keys(&self, prefix: &str) -> usize {
        self.store.db.scan(prefix.as_bytes(), None).count()
    }
}

fn csv_rows(names: &[&str]) -> Vec<ImportRow> {
    let mut text =
        String::from("name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n");
    for n in names {
        // An address of its own per name: one machine is one server.
        let h = n
            .bytes()
            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
        text.push_str(&format!(
            "{n},10.{}.{}.{},22,debian,ovh,2,4,40,role=web\n",
            (h >> 16) & 0xff,
            (h >> 8) & 0xff,
            (h & 0xff).max(1)
        ));
    }
    vigie_catalog::servers::parse_servers("s.csv", text.as_bytes(), |_| {}).unwrap()
}

fn import(rows: Vec<ImportRow>, dry_run: bool) -> CatalogCall {
    CatalogCall::Import {
        file: "s.csv".into(),
        digest: "0".repeat(64),
        rows,
        dry_run,
    }
}

#[test]
fn an_import_is_all_or_nothing_and_lists_every_conflict() {
    let mut f = fixture();
    let first = f
        .one(&acme(), import(csv_rows(&["a", "b"]), false))
        .unwrap();
    assert!(
        matches!(first, CatalogAnswer::Imported { session: Some(ref s), servers: 2 } if s.id == 1)
    );
    let audit_before = f.keys("audit/rec/");
    // Two names already imported, one new: refused whole.
    let err = f
        .one(&acme(), import(csv_rows(&["c", "a", "b"]), false))
        .unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Invalid);
    assert!(err.message.contains("2 error(s)"), "{}", err.message);
    assert!(
        err.message.contains("line 3, column 'name'"),
        "{}",
        err.message
    );
    assert!(
        err.message.contains("line 4, column 'name'"),
        "{}",
        err.message
    );
    assert_eq!(
        f.keys("server/"),
        2,
        "nothing of the refused import is stored"
    );
    assert_eq!(f.keys("session/"), 1);
    assert_eq!(f.keys("audit/rec/"), audit_before);
    // A dry run checks and writes nothing.
    let dry = f.one(&acme(), import(csv_rows(&["c"]), true)).unwrap();
    assert!(matches!(
        dry,
        CatalogAnswer::Imported {
            session: None,
            servers: 1
        }
    ));
    assert_eq!(f.keys("server/"), 2);
    // One machine is one server: another name at a's address is refused.
    let mut same_machine = csv_rows(&["d"]);
    same_machine[0].server.address = csv_rows(&["a"])[0].server.address;
    let err = f.one(&acme(), import(same_machine, false)).unwrap_err();
    assert!(
        err.message.contains("column 'address'") && err.message.contains("already server \"a\"'s"),
        "{}",
        err.message
    );
    assert_eq!(f.keys("server/"), 2);
    // Names are the tower's: another tenant cannot take one, nor see it.
    let other = Caller::internal("globex", "ops");
    let err = f.one(&other, import(csv_rows(&["a"]), false)).unwrap_err();
    assert!(
        err.message.contains("in use in this tower"),
        "{}",
        err.message
    );
    let listed = f
        .one(
            &other,
            CatalogCall::Servers {
                session: None,
                target: None,
            },
        )
        .unwrap();
    assert_eq!(listed, CatalogAnswer::Servers(vec![]));
    // Sessions are numbered per tenant and survive a restart.
    f.one(&acme(), import(csv_rows(&["c"]), false)).unwrap();
    f.tower = crate::shell::load::tower(&f.store.db, TIMING).unwrap();
    let CatalogAnswer::Sessions(s) = f.one(&acme(), CatalogCall::Sessions).unwrap() else {
        panic!()
    };
    let ids: Vec<(u64, u64)> = s.iter().map(|s| (s.id, s.rows)).collect();
    assert_eq!(ids, vec![(1, 2), (2, 1)]);
}

fn pool(name: &str, cidr: &str) -> CatalogCall {
    CatalogCall::PoolAdd {
        spec: PoolSpec {
            name: name.into(),
            cidr: cidr.parse().unwrap(),
            gateway: None,
            reserved: vec![],
        },
    }
}

#[test]
fn allocations_in_one_turn_never_share_an_address_and_survive_a_restart() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a"]), false)).unwrap();
    f.one(&acme(), pool("lan", "192.0.2.0/29")).unwrap();
    let alloc = || CatalogCall::Allocate {
        pool: "lan".into(),
        owner: Owner::Server("a".into()),
        count: 2,
    };
    // Four calls of two in one turn: six usable addresses.
    let out = f.turn(&acme(), vec![alloc(), alloc(), alloc(), alloc()]);
    let mut got = Vec::new();
    for r in &out[..3] {
        let Ok(CatalogAnswer::Allocations(a)) = r else {
            panic!("{r:?}")
        };
        got.extend(a.iter().map(|a| a.address));
    }
    let err = out[3].clone().unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Conflict);
    assert!(
        err.message.contains("pool lan exhausted"),
        "{}",
        err.message
    );
    let mut unique = got.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 6, "{got:?}");
    // After a restart the table is the same: nothing more to hand out.
    f.tower = crate::shell::load::tower(&f.store.db, TIMING).unwrap();
    assert!(f.one(&acme(), alloc()).is_err());
    // Release one, get that one back.
    f.one(
        &acme(),
        CatalogCall::Release {
            pool: "lan".into(),
            address: Some(got[0]),
            owner: None,
        },
    )
    .unwrap();
    let again = f
        .one(
            &acme(),
            CatalogCall::Allocate {
                pool: "lan".into(),
                owner: Owner::Server("a".into()),
                count: 1,
            },
        )
        .unwrap();
    let CatalogAnswer::Allocations(a) = again else {
        panic!()
    };
    assert_eq!(a[0].address, got[0]);
}

#[test]
fn bad_pool_calls_are_refused_and_write_nothing() {
    let mut f = fixture();
    f.one(&acme(), pool("lan", "10.0.0.0/16")).unwrap();
    let writes = f.keys("");
    let err = f.one(&acme(), pool("dmz", "10.0.4.0/24")).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Conflict);
    assert!(err.message.contains("overlaps pool lan"), "{}", err.message);
    let err = f
        .one(
            &acme(),
            CatalogCall::Allocate {
                pool: "nope".into(),
                owner: Owner::Server("x".into()),
                count: 1,
            },
        )
        .unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::NotFound);
    let err = f
        .one(
            &acme(),
            CatalogCall::Allocate {
                pool: "lan".into(),
                owner: Owner::Server("unknown".into()),
                count: 1,
            },
        )
        .unwrap_err();
    assert!(err.message.contains("no server unknown"), "{}", err.message);
    assert_eq!(f.keys(""), writes);
    // Another tenant may use the same range: pools are per tenant.
    f.one(
        &Caller::internal("globex", "ops"),
        pool("lan", "10.0.0.0/16"),
    )
    .unwrap();
}

#[test]
fn a_scoped_importer_imports_only_inside_its_scope_and_apps_versions_are_not_rewritten() {
    let mut f = fixture();
    let mut web_only = acme();
    web_only.scope = vigie_wire::tower::Scope::Only(vec!["web-*".into()]);
    let err = f
        .one(&web_only, import(csv_rows(&["web-1", "db-1"]), false))
        .unwrap_err();
    assert!(
        err.message.contains("may not import \"db-1\""),
        "{}",
        err.message
    );
    assert_eq!(f.keys("server/"), 0);
    f.one(&web_only, import(csv_rows(&["web-1"]), false))
        .unwrap();
    // It sees its servers only.
    f.one(&acme(), import(csv_rows(&["db-1"]), false)).unwrap();
    let CatalogAnswer::Servers(v) = f
        .one(
            &web_only,
            CatalogCall::Servers {
                session: None,
                target: None,
            },
        )
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(v.len(), 1);

    let app = |repo: &str| CatalogCall::AppAdd {
        spec: vigie_catalog::apps::parse_app(
            "a.yml",
            &format!("name: shop\nversion: 1.0.0\nrepository: {repo}\n"),
        )
        .unwrap(),
    };
    f.one(&acme(), app("https://h/shop.git")).unwrap();
    // The same again is a no-op; other content under the same version is refused.
    f.one(&acme(), app("https://h/shop.git")).unwrap();
    let err = f.one(&acme(), app("https://h/other.git")).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Conflict);
    assert_eq!(f.keys("app/"), 1);
}

fn init() -> vigie_wire::change::ChangeSpec {
    vigie_changes::parse_change("init.yml", "title: init\nsteps:\n  - run: \"true\"\n").unwrap()
}

/// acme's operator `ops`, stored with these grants, as it calls.
fn ops_with(f: &mut Fixture, grants: &[&str]) -> Caller {
    f.tower
        .access_mut()
        .operators_mut()
        .retain(|o| o.name != "ops");
    f.tower
        .access_mut()
        .operators_mut()
        .push(vigie_wire::front::OperatorRecord {
            name: "ops".into(),
            tenant: "acme".into(),
            public: "o".repeat(40),
            grants: grants
                .iter()
                .map(|g| vigie_wire::front::Grant::parse(g).unwrap())
                .collect(),
            revoked: false,
        });
    Caller {
        origin: vigie_wire::tower::Origin::Operator {
            home: "acme".into(),
        },
        ..acme()
    }
}

fn provision(names: &[&str], init: Option<vigie_wire::change::ChangeSpec>) -> CatalogCall {
    CatalogCall::Provision {
        names: names.iter().map(|n| n.to_string()).collect(),
        target: None,
        init,
        pool: None,
    }
}

#[test]
fn an_init_change_needs_changes_submit_over_the_new_hosts_and_runs_as_the_requester() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a", "b"]), false))
        .unwrap();
    let admin_only = ops_with(&mut f, &["servers.admin", "hosts.admin"]);
    let writes_before = f.keys("");
    let refused = f
        .one(&admin_only, provision(&["a"], Some(init())))
        .unwrap_err();
    assert_eq!(refused.kind, ApiFaultKind::Forbidden, "{refused:?}");
    assert!(
        refused.message.contains("changes.submit"),
        "{}",
        refused.message
    );
    assert_eq!(f.keys(""), writes_before, "nothing written");
    assert_eq!(
        f.tower.catalog().server_named("a").unwrap().state,
        vigie_wire::catalog::ServerState::New
    );
    // A grant over other hosts is not enough either.
    let elsewhere = ops_with(
        &mut f,
        &["servers.admin", "hosts.admin", "changes.submit@role=db"],
    );
    let refused = f
        .one(&elsewhere, provision(&["a"], Some(init())))
        .unwrap_err();
    assert_eq!(refused.kind, ApiFaultKind::Forbidden);
    // Without an init change, servers.admin and hosts.admin are enough.
    f.one(&admin_only, provision(&["a"], None)).unwrap();

    // With changes.submit over the server's labels, the init is queued
    // under the requester's name, not the provisioner's.
    let submitter = ops_with(
        &mut f,
        &["servers.admin", "hosts.admin", "changes.submit@role=web"],
    );
    f.one(&submitter, provision(&["b"], Some(init()))).unwrap();
    let tower = Caller::internal("acme", "provisioner");
    f.one(&tower, enrol("b", &"2".repeat(40))).unwrap();
    let first = f.tower.queues().head("b").unwrap().clone();
    assert_eq!(
        f.tower.queues().change(&first).unwrap().view.operator,
        "ops"
    );

    // Revoked between the request and the enrolment: the init is not run
    // in its name; the enrolment is refused and writes nothing.
    f.one(&acme(), import(csv_rows(&["c"]), false)).unwrap();
    f.one(&submitter, provision(&["c"], Some(init()))).unwrap();
    f.tower
        .access_mut()
        .operators_mut()
        .iter_mut()
        .for_each(|o| o.revoked = true);
    let audit_before = f.keys("audit/rec/");
    let refused = f.one(&tower, enrol("c", &"4".repeat(40))).unwrap_err();
    assert_eq!(refused.kind, ApiFaultKind::Forbidden, "{refused:?}");
    assert!(!f.tower.hosts().contains("c"));
    assert_eq!(f.keys("audit/rec/"), audit_before, "no trace");
}

#[test]
fn an_oversize_init_is_refused_when_asked_and_an_enrolment_that_cannot_queue_it_writes_nothing() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a"]), false)).unwrap();
    // Under MAX_VALUE once, too large once copied into the change record.
    let big = vigie_changes::parse_change(
        "init.yml",
        &format!(
            "title: {}\nsteps:\n  - run: \"true\"\n",
            "x".repeat(3 << 20)
        ),
    )
    .unwrap();
    let refused = f
        .one(&acme(), provision(&["a"], Some(big.clone())))
        .unwrap_err();
    assert_eq!(refused.kind, ApiFaultKind::Invalid, "{refused:?}");
    assert_eq!(f.keys("provision/"), 0);
    // One stored before this check existed: the enrolment refuses before
    // registering the host or accepting its key.
    f.one(&acme(), provision(&["a"], None)).unwrap();
    let mut kept = f.tower.catalog().provision("a").unwrap().clone();
    kept.init = Some(big);
    // In memory only, as a record stored before this check existed is.
    f.tower
        .catalog_mut()
        .put_provision(&mut Turn::started(), kept);
    let audit_before = f.keys("audit/rec/");
    let tower = Caller::internal("acme", "provisioner");
    let err = f.one(&tower, enrol("a", &"1".repeat(40))).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Invalid, "{err:?}");
    assert!(!f.tower.hosts().contains("a"), "no host");
    assert!(
        !f.tower.access().keys().contains_key(&"1".repeat(40)),
        "no key"
    );
    assert_eq!(f.keys("host/"), 0);
    assert_eq!(f.keys("audit/rec/"), audit_before, "no trace");
}

#[test]
fn a_removed_hosts_server_is_new_again_and_its_next_provisioning_makes_a_fresh_key() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a"]), false)).unwrap();
    f.one(&acme(), provision(&["a"], None)).unwrap();
    let tower = Caller::internal("acme", "provisioner");
    f.one(&tower, enrol("a", &"1".repeat(40))).unwrap();
    assert!(!f.tower.catalog().server_named("a").unwrap().fresh_key);
    let audit_before = f.keys("audit/rec/");
    let mut t = Turn::started();
    crate::shell::history::api(
        &mut f.tower,
        &acme(),
        ApiCall::HostRemove {
            host: "a".into(),
            force: false,
        },
        &f.store.db,
        Instant::now(),
        &mut t,
    )
    .unwrap();
    f.store.commit(&mut f.tower, &mut t);
    let s = &f.tower.catalog().server_named("a").unwrap();
    assert_eq!(s.state, vigie_wire::catalog::ServerState::New);
    assert!(s.fresh_key, "its old agent key is revoked");
    // host_removed, key_revoked and server_unhosted, in the removal's batch.
    assert_eq!(f.keys("audit/rec/"), audit_before + 3);
    // A beat its agent sent before the front door learnt of the removal
    // does not bring the host back (nor in the default tenant).
    let mut t = Turn::started();
    let beat = crate::core::handlers::events::Beat {
        incarnation: 1,
        labels: Default::default(),
        busy: None,
        refusing: None,
    };
    crate::core::handlers::events::heartbeat(&mut f.tower, "a", beat, Instant::now(), &mut t);
    f.store.commit(&mut f.tower, &mut t);
    assert!(
        !f.tower.hosts().contains("a"),
        "a removed host stays removed"
    );
    let reloaded = f.store.tower();
    assert_eq!(
        reloaded.catalog().server_named("a").unwrap().state,
        vigie_wire::catalog::ServerState::New
    );
    // Provisioned again: the provisioner is told to make a fresh key, and
    // the old (revoked) one is refused.
    f.one(&acme(), provision(&["a"], None)).unwrap();
    match f.one(&tower, CatalogCall::Provisioning).unwrap() {
        CatalogAnswer::Servers(v) => assert!(v.iter().any(|s| s.spec.name == "a" && s.fresh_key)),
        other => panic!("{other:?}"),
    }
    let old = f.one(&tower, enrol("a", &"1".repeat(40))).unwrap_err();
    assert_eq!(old.kind, ApiFaultKind::Conflict);
    f.one(&tower, enrol("a", &"2".repeat(40))).unwrap();
    assert!(f.tower.hosts().contains("a"));
    assert!(!f.tower.catalog().server_named("a").unwrap().fresh_key);
}

#[test]
fn an_agent_started_before_its_enrolment_knocks_pending_and_is_enrolled() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a"]), false)).unwrap();
    f.one(&acme(), provision(&["a"], None)).unwrap();
    let public = "3".repeat(40);
    let mut t = Turn::started();
    crate::shell::history::api(
        &mut f.tower,
        &Caller::internal("default", "majordomo"),
        ApiCall::KeysPending {
            knocks: vec![vigie_wire::front::Knock {
                public: public.clone(),
                address: "10.9.0.1".into(),
            }],
            dropped: 0,
        },
        &f.store.db,
        Instant::now(),
        &mut t,
    )
    .unwrap();
    f.tower.finish_turn(&mut t);
    assert_eq!(
        f.tower.access().keys()[&public].state,
        vigie_wire::front::KeyState::Pending
    );
    let tower = Caller::internal("acme", "provisioner");
    f.one(&tower, enrol("a", &public)).unwrap();
    let k = &f.tower.access().keys()[&public];
    assert_eq!(k.state, vigie_wire::front::KeyState::Accepted);
    assert_eq!((k.host.as_str(), k.tenant.as_str()), ("a", "acme"));
    assert!(f.tower.hosts().contains("a"));
}

fn enrol(name: &str, public: &str) -> CatalogCall {
    CatalogCall::Enrol {
        name: name.into(),
        public: public.into(),
    }
}

#[test]
fn enrolment_makes_the_host_accepts_its_key_and_queues_the_init_first_in_one_turn() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a", "b"]), false))
        .unwrap();
    let operator = ops_with(
        &mut f,
        &["servers.admin", "hosts.admin", "changes.submit@role=web"],
    );
    // An operator asks; only the tower enrols.
    f.one(
        &operator,
        CatalogCall::Provision {
            names: vec!["a".into()],
            target: None,
            init: Some(init()),
            pool: None,
        },
    )
    .unwrap();
    let forged = f.one(&operator, enrol("a", &"1".repeat(40))).unwrap_err();
    assert_eq!(forged.kind, ApiFaultKind::Forbidden);
    let again = f
        .one(
            &acme(),
            CatalogCall::Provision {
                names: vec!["a".into()],
                target: None,
                init: None,
                pool: None,
            },
        )
        .unwrap_err();
    assert_eq!(again.kind, ApiFaultKind::Conflict, "a is provisioning");
    assert_eq!(f.keys("provision/"), 1, "nothing of the refused request");

    let tower = Caller::internal("acme", "provisioner");
    f.one(&tower, enrol("a", &"1".repeat(40))).unwrap();
    let host = &f.tower.hosts()["a"];
    assert_eq!(host.rec.labels.get("role").map(String::as_str), Some("web"));
    assert_eq!(
        f.tower.queues().len_of("a"),
        1,
        "the init change is queued first"
    );
    assert_eq!(f.tower.access().keys()[&"1".repeat(40)].host, "a");
    assert_eq!(
        f.tower.catalog().server_named("a").unwrap().state,
        vigie_wire::catalog::ServerState::Host
    );
    assert_eq!(f.keys("provision/"), 0);
    // The state is stored: a restarted referee sees the same.
    let reloaded = f.store.tower();
    assert!(reloaded.hosts().contains("a"));
    assert_eq!(
        reloaded.catalog().server_named("a").unwrap().state,
        vigie_wire::catalog::ServerState::Host
    );
    // A host is not provisioned again.
    let host_again = f
        .one(
            &acme(),
            CatalogCall::Provision {
                names: vec!["a".into()],
                target: None,
                init: None,
                pool: None,
            },
        )
        .unwrap_err();
    assert_eq!(host_again.kind, ApiFaultKind::Conflict);
}

#[test]
fn a_refused_enrolment_leaves_nothing_and_a_failed_server_can_be_retried() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a", "b"]), false))
        .unwrap();
    let provision =
        |names: &[&str], init: Option<vigie_wire::change::ChangeSpec>| CatalogCall::Provision {
            names: names.iter().map(|n| n.to_string()).collect(),
            target: None,
            init,
            pool: None,
        };
    f.one(&acme(), provision(&["a", "b"], Some(init())))
        .unwrap();
    let tower = Caller::internal("acme", "provisioner");
    f.one(&tower, enrol("a", &"1".repeat(40))).unwrap();
    let audit_before = f.keys("audit/rec/");
    // b's agent key is a's: refused, nothing registered for b.
    let dup = f.one(&tower, enrol("b", &"1".repeat(40))).unwrap_err();
    assert_eq!(dup.kind, ApiFaultKind::Conflict);
    assert!(!f.tower.hosts().contains("b"));
    assert_eq!(f.keys("audit/rec/"), audit_before, "no trace");
    f.one(
        &tower,
        CatalogCall::ProvisionFailed {
            name: "b".into(),
            reason: "unreachable: 10.9.0.2:22: refused".into(),
        },
    )
    .unwrap();
    assert!(matches!(
        &f.tower.catalog().server_named("b").unwrap().state,
        vigie_wire::catalog::ServerState::Failed { reason } if reason.contains("unreachable")
    ));
    // A retry without --init keeps the first request's init change.
    f.one(&acme(), provision(&["b"], None)).unwrap();
    f.one(&tower, enrol("b", &"2".repeat(40))).unwrap();
    assert_eq!(f.tower.queues().len_of("b"), 1, "the init change kept");
}

#[test]
fn a_host_key_once_pinned_is_replaced_only_by_an_operator_explicitly() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a"]), false)).unwrap();
    f.one(
        &acme(),
        CatalogCall::Provision {
            names: vec!["a".into()],
            target: None,
            init: None,
            pool: None,
        },
    )
    .unwrap();
    let tower = Caller::internal("acme", "provisioner");
    let k1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGUpChAjEq0XhvYPDMZC1nzbMls3ceoahEsmCO3SnHrA";
    let k2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGWL/ZHE98R1Cw6KuawNTiIOfSNSuNSxmcGXmd0tFRv3";
    let seen = |k: &str| CatalogCall::HostKeySeen {
        name: "a".into(),
        key: k.into(),
    };
    f.one(&tower, seen(k1)).unwrap();
    let replaced = f.one(&tower, seen(k2)).unwrap_err();
    assert_eq!(replaced.kind, ApiFaultKind::Conflict);
    assert_eq!(
        f.tower
            .catalog()
            .server_named("a")
            .unwrap()
            .spec
            .host_key
            .as_deref(),
        Some(k1)
    );
    // Only an operator replaces a pin, explicitly, and not while the
    // server is being provisioned.
    let pin = |k: &str| CatalogCall::Pin {
        name: "a".into(),
        host_key: k.into(),
    };
    let busy = f.one(&acme(), pin(k2)).unwrap_err();
    assert_eq!(busy.kind, ApiFaultKind::Conflict);
    f.one(
        &tower,
        CatalogCall::ProvisionFailed {
            name: "a".into(),
            reason: "host key mismatch".into(),
        },
    )
    .unwrap();
    let audit_before = f.keys("audit/rec/");
    let bad = f.one(&acme(), pin("ssh-ed25519 !!")).unwrap_err();
    assert_eq!(bad.kind, ApiFaultKind::Invalid);
    f.one(&acme(), pin(k2)).unwrap();
    assert_eq!(
        f.tower
            .catalog()
            .server_named("a")
            .unwrap()
            .spec
            .host_key
            .as_deref(),
        Some(k2)
    );
    assert_eq!(f.keys("audit/rec/"), audit_before + 1, "audited");
}

#[test]
fn an_import_too_large_for_one_batch_is_refused_whole_and_says_to_split_it() {
    let mut f = fixture();
    // 20,000 rows (the most a file may hold) with long labels: a file
    // the CLI accepts (under 8 MiB), whose records — each also naming
    // its tenant, here a long name — outgrow one batch.
    let tenant = Caller::internal(&"t".repeat(48), "ops");
    let v = "v".repeat(64);
    let mut text = String::from(
        "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels,host_key\n",
    );
    for i in 0..vigie_catalog::servers::MAX_ROWS {
        text.push_str(&format!(
            "s-{i},10.{}.{}.{},22,debian,ovh,2,4,40,l0={v};l1={v};l2={v};l3={v};l4={},\
             SHA256:{}\n",
            (i >> 16) & 255,
            (i >> 8) & 255,
            i & 255,
            &v[..30],
            "A".repeat(43)
        ));
    }
    assert!(
        text.len() < vigie_catalog::servers::MAX_FILE,
        "{}",
        text.len()
    );
    let rows = vigie_catalog::servers::parse_servers("big.csv", text.as_bytes(), |_| {}).unwrap();
    for dry_run in [true, false] {
        let err = f.one(&tenant, import(rows.clone(), dry_run)).unwrap_err();
        assert_eq!(err.kind, ApiFaultKind::Invalid);
        assert!(
            err.message.contains("split the file") && err.message.contains("20000 rows"),
            "{}",
            err.message
        );
    }
    assert_eq!(f.keys("server/"), 0, "nothing stored");
    assert_eq!(f.keys("session/"), 0);
    // Half of it fits.
    f.one(&acme(), import(rows[..10_000].to_vec(), false))
        .unwrap();
    assert_eq!(f.keys("server/"), 10_000);
}

fn bravo() -> Caller {
    Caller::internal("bravo", "ops")
}

/// One server `name` at `address`.
fn row_at(name: &str, address: &str) -> Vec<ImportRow> {
    let text = format!(
        "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n\
         {name},{address},22,debian,ovh,2,4,40,role=web\n"
    );
    vigie_catalog::servers::parse_servers("s.csv", text.as_bytes(), |_| {}).unwrap()
}

#[test]
fn servers_admin_without_hosts_admin_registers_no_host() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a"]), false)).unwrap();
    let importer = ops_with(&mut f, &["servers.admin", "changes.submit"]);
    let before = f.keys("");
    let refused = f.one(&importer, provision(&["a"], None)).unwrap_err();
    assert_eq!(refused.kind, ApiFaultKind::Forbidden, "{refused:?}");
    assert!(
        refused.message.contains("hosts.admin"),
        "{}",
        refused.message
    );
    assert_eq!(f.keys(""), before, "nothing written");
    // Asked with the grant, then revoked before the enrolment: refused
    // then too, nothing registered.
    let full = ops_with(&mut f, &["servers.admin", "hosts.admin"]);
    f.one(&full, provision(&["a"], None)).unwrap();
    ops_with(&mut f, &["servers.admin"]);
    let tower = Caller::internal("acme", "provisioner");
    let refused = f.one(&tower, enrol("a", &"3".repeat(40))).unwrap_err();
    assert_eq!(refused.kind, ApiFaultKind::Forbidden, "{refused:?}");
    assert!(!f.tower.hosts().contains("a"));
    assert!(
        f.tower.access().keys().is_empty()
            || !f.tower.access().keys().values().any(|k| k.host == "a")
    );
}

#[test]
fn an_address_is_one_machine_however_spelt_and_the_first_host_claims_it_tower_wide() {
    let mut f = fixture();
    f.one(&acme(), import(row_at("a-0", "192.0.2.2"), false))
        .unwrap();
    // The IPv4-mapped spelling of the same machine: refused in one tenant,
    // whether sent as the CLI reads it or as a raw IPv6 address.
    let mut mapped = row_at("a-1", "192.0.2.3");
    mapped[0].server.address = "::ffff:192.0.2.2".parse().unwrap();
    let dup = f.one(&acme(), import(mapped, false)).unwrap_err();
    assert!(
        dup.message.contains("is already server \"a-0\"'s"),
        "{}",
        dup.message
    );
    // Another tenant's import of it is accepted (in the mapped spelling,
    // stored as the IPv4 address)...
    let mut theirs = row_at("b-0", "192.0.2.9");
    theirs[0].server.address = "::ffff:192.0.2.2".parse().unwrap();
    f.one(&bravo(), import(theirs, false)).unwrap();
    assert_eq!(
        f.tower
            .catalog()
            .server_named("b-0")
            .unwrap()
            .spec
            .address
            .to_string(),
        "192.0.2.2"
    );
    // ... but once acme's server is a host, bravo's provisioning of that
    // machine is refused, naming neither acme nor its server.
    f.one(&acme(), provision(&["a-0"], None)).unwrap();
    let busy = f.one(&bravo(), provision(&["b-0"], None)).unwrap_err();
    assert_eq!(busy.kind, ApiFaultKind::Conflict, "{busy:?}");
    let tower = Caller::internal("acme", "provisioner");
    f.one(&tower, enrol("a-0", &"4".repeat(40))).unwrap();
    let refused = f.one(&bravo(), provision(&["b-0"], None)).unwrap_err();
    assert_eq!(refused.kind, ApiFaultKind::Conflict, "{refused:?}");
    assert!(
        refused.message.contains("another server's"),
        "{}",
        refused.message
    );
    for secret in ["acme", "a-0"] {
        assert!(!refused.message.contains(secret), "{}", refused.message);
    }
    assert_eq!(
        f.tower.catalog().server_named("b-0").unwrap().state,
        vigie_wire::catalog::ServerState::New
    );
}

#[test]
fn twenty_thousand_servers_are_provisioned_in_one_request_without_a_scan_each() {
    let mut f = fixture();
    let mut text =
        String::from("name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n");
    let n = vigie_catalog::servers::MAX_ROWS;
    for i in 0..n {
        text.push_str(&format!(
            "s-{i},10.{}.{}.{},22,debian,ovh,2,4,40,role=web\n",
            i >> 16,
            (i >> 8) & 255,
            i & 255
        ));
    }
    let rows = vigie_catalog::servers::parse_servers("s.csv", text.as_bytes(), |_| {}).unwrap();
    let asked: Vec<String> = rows.iter().map(|r| r.server.name.clone()).collect();
    f.one(&acme(), import(rows, false)).unwrap();
    // An operator's request: its hosts.admin is checked on every server.
    let ops = ops_with(&mut f, &["servers.admin", "hosts.admin@role=web"]);
    let t = Instant::now();
    let call = CatalogCall::Provision {
        names: asked,
        target: None,
        init: None,
        pool: None,
    };
    f.one(&ops, call).unwrap();
    let took = t.elapsed();
    eprintln!("provision of {n} servers in a catalog of {n}: {took:?}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[test]
fn a_request_goes_server_by_server_and_a_hosts_row_is_kept() {
    use vigie_wire::catalog::ProvisionOutcome;
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a", "b"]), false))
        .unwrap();
    f.one(&acme(), provision(&["a"], None)).unwrap();
    let tower = Caller::internal("acme", "provisioner");
    f.one(&tower, enrol("a", &"1".repeat(40))).unwrap();
    // a is a host: reported once, and b is queued all the same.
    let CatalogAnswer::Provisioned(r) = f.one(&acme(), provision(&["a", "b"], None)).unwrap()
    else {
        panic!("not per server")
    };
    let got: Vec<(&str, &ProvisionOutcome)> =
        r.iter().map(|r| (r.name.as_str(), &r.outcome)).collect();
    assert_eq!(
        got,
        [
            ("a", &ProvisionOutcome::AlreadyHost),
            ("b", &ProvisionOutcome::Queued)
        ]
    );
    assert_eq!(f.keys("provision/"), 1, "b's request only");
    a_hosts_machine_stays_and_its_facts_may_change(&mut f);
}

/// A host's machine and labels stay (edit, remove, undo refused, with no
/// trace); its inventory facts may change.
fn a_hosts_machine_stays_and_its_facts_may_change(f: &mut Fixture) {
    use vigie_wire::catalog::ServerEdit;
    let audit_before = f.keys("audit/rec/");
    let moved = ServerEdit {
        address: Some("10.99.0.1".parse().unwrap()),
        ..Default::default()
    };
    let e = f
        .one(
            &acme(),
            CatalogCall::Edit {
                name: "a".into(),
                edit: moved,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ApiFaultKind::Conflict, "{e:?}");
    let e = f
        .one(
            &acme(),
            CatalogCall::Remove {
                names: vec!["a".into()],
                force: true,
            },
        )
        .unwrap_err();
    assert_eq!(e.kind, ApiFaultKind::Conflict, "{e:?}");
    let e = f
        .one(
            &acme(),
            CatalogCall::Undo {
                session: 1,
                force: true,
            },
        )
        .unwrap_err();
    assert!(e.message.contains("a (a host)"), "{}", e.message);
    assert_eq!(
        f.keys("audit/rec/"),
        audit_before,
        "refusals leave no trace"
    );
    let bigger = ServerEdit {
        ram_gb: Some(64),
        ..Default::default()
    };
    f.one(
        &acme(),
        CatalogCall::Edit {
            name: "a".into(),
            edit: bigger,
        },
    )
    .unwrap();
    assert_eq!(
        f.store
            .tower()
            .catalog()
            .server_named("a")
            .unwrap()
            .spec
            .ram_gb,
        64
    );
}

/// Issue 25 item 4: `servers provision --pool` hands each queued server an
/// address in the request's decision (all or nothing, `ips.admin` of the
/// caller's own), and the host it becomes binds there (`address=`).
#[test]
fn a_pool_gives_provisioned_servers_their_addresses_and_their_hosts_bind_there() {
    let mut f = fixture();
    f.one(&acme(), import(csv_rows(&["a", "b", "c"]), false))
        .unwrap();
    f.one(&acme(), pool("lan", "192.0.2.0/30")).unwrap();
    let with_pool = |names: &[&str]| CatalogCall::Provision {
        names: names.iter().map(|n| n.to_string()).collect(),
        target: None,
        init: None,
        pool: Some("lan".into()),
    };
    let no_ips = ops_with(&mut f, &["servers.admin", "hosts.admin"]);
    let err = f.one(&no_ips, with_pool(&["a"])).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Forbidden, "{err}");
    let ops = ops_with(&mut f, &["servers.admin", "hosts.admin", "ips.admin"]);
    // Two usable addresses in a /30: three servers are refused whole.
    let err = f.one(&ops, with_pool(&["a", "b", "c"])).unwrap_err();
    assert!(
        err.message.contains("2 free address(es), 3 server(s)"),
        "{err}"
    );
    assert_eq!(f.keys("provision/"), 0, "nothing of the refused request");
    f.one(&ops, with_pool(&["a"])).unwrap();
    let given = f
        .tower
        .catalog()
        .pool_allocations("acme", "lan")
        .iter()
        .map(|a| (a.owner.clone(), a.address.to_string()))
        .collect::<Vec<_>>();
    assert_eq!(given, vec![(Owner::Server("a".into()), "192.0.2.1".into())]);
    // The provisioner learns it with the pool's prefix, to put it on the
    // server; an operator may not ask (nothing of the tower's own work).
    let tower = Caller::internal("acme", "provisioner");
    let ask = || CatalogCall::ServerAddresses { name: "a".into() };
    match f.one(&tower, ask()).unwrap() {
        CatalogAnswer::Given(v) => {
            let got: Vec<_> = v
                .iter()
                .map(|g| (g.address.to_string(), g.prefix))
                .collect();
            assert_eq!(got, vec![("192.0.2.1".to_string(), 30)]);
        }
        other => panic!("{other:?}"),
    }
    let refused = f.one(&ops, ask()).unwrap_err();
    assert_eq!(refused.kind, ApiFaultKind::Forbidden, "{refused:?}");
    let elsewhere = Caller::internal("globex", "provisioner");
    let err = f.one(&elsewhere, ask()).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::NotFound, "another tenant's server");
    f.one(&tower, enrol("a", &"1".repeat(40))).unwrap();
    let labels = &f.tower.hosts()["a"].rec.labels;
    assert_eq!(labels.get("address").map(String::as_str), Some("192.0.2.1"));
    assert_eq!(labels.get("role").map(String::as_str), Some("web"));
}
