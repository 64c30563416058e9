//! Fair shares (issue 18, attack 4): one tenant past its share of
//! catalog rows, addresses or queued changes is refused whole, with a
//! clear error naming the limit, nothing stored; another tenant still
//! has its own share; an allocation's audit record stays small.

use std::time::Instant;

use vigie_wire::catalog::{CatalogAnswer, CatalogCall, ImportRow, Owner, PoolSpec};
use vigie_wire::limits::Shares;
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind, AuditRecord, Caller};

use crate::core::handlers::host_labels::new_host;
use crate::core::state::Core;
use crate::core::turn::Turn;
use crate::shell::store::Store;

struct Fixture {
    store: crate::shell::test_store::TestStore,
    tower: Core,
}

fn fixture(limits: Shares) -> Fixture {
    let store = crate::shell::test_store::store();
    let mut tower = store.tower();
    let rules = tower.rules().to_vec();
    tower.with_setup(rules, limits);
    Fixture { tower, store }
}

fn acme() -> Caller {
    Caller::internal("acme", "ops")
}

fn globex() -> Caller {
    Caller::internal("globex", "ops")
}

impl Fixture {
    /// One call in its own turn, the turn stored.
    fn call(&mut self, caller: &Caller, call: ApiCall) -> Result<ApiAnswer, ApiFault> {
        let mut t = Turn::started();
        let out = crate::shell::history::api(
            &mut self.tower,
            caller,
            call,
            &self.store.db,
            Instant::now(),
            &mut t,
        );
        self.store.commit(&mut self.tower, &mut t);
        out
    }

    fn catalog(&mut self, caller: &Caller, call: CatalogCall) -> Result<CatalogAnswer, ApiFault> {
        self.call(caller, ApiCall::Catalog(call)).map(|a| match a {
            ApiAnswer::Catalog(c) => c,
            other => panic!("{other:?}"),
        })
    }

    fn keys(&self, prefix: &str) -> usize {
        self.store.db.scan(prefix.as_bytes(), None).count()
    }

    fn audit(&self) -> Vec<AuditRecord> {
        self.store
            .db
            .scan(crate::core::audit::PREFIX, None)
            .map(|e| vigie_wire::decode(&e.unwrap().1).unwrap())
            .collect()
    }
}

/// `n` servers named `PREFIX-i`, each its own address.
fn rows(prefix: &str, n: u32) -> Vec<ImportRow> {
    let mut text =
        String::from("name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n");
    for i in 0..n {
        text.push_str(&format!(
            "{prefix}-{i},10.{}.{}.{},22,debian,ovh,2,4,40,role=web\n",
            prefix.len(),
            i / 250,
            i % 250 + 1
        ));
    }
    vigie_catalog::servers::parse_servers("s.csv", text.as_bytes(), |_| {}).unwrap()
}

fn import(rows: Vec<ImportRow>) -> CatalogCall {
    CatalogCall::Import {
        file: "s.csv".into(),
        digest: "0".repeat(64),
        rows,
        dry_run: false,
    }
}

#[test]
fn an_import_past_the_tenant_s_row_share_is_refused_whole_and_others_keep_theirs() {
    let mut f = fixture(Shares {
        servers_per_tenant: 5,
        servers: 8,
        ..Shares::default()
    });
    f.catalog(&acme(), import(rows("a", 3))).unwrap();
    let before = f.keys("");
    let e = f.catalog(&acme(), import(rows("b", 3))).unwrap_err();
    assert_eq!(e.kind, ApiFaultKind::Conflict);
    assert!(
        e.message.contains("tenant acme to 6 servers")
            && e.message.contains("limits.servers_per_tenant")
            && e.message.contains("nothing imported"),
        "{}",
        e.message
    );
    assert_eq!(
        f.keys(""),
        before,
        "nothing stored, not even an audit record"
    );
    assert_eq!(f.tower.catalog().server_count(), 3);
    // Another tenant has its own share, within the tower's.
    f.catalog(&globex(), import(rows("g", 5))).unwrap();
    let e = f.catalog(&acme(), import(rows("c", 1))).unwrap_err();
    assert!(e.message.contains("(limits.servers)"), "{}", e.message);
    assert!(!e.message.contains("globex"), "{}", e.message);
}

#[test]
fn a_taken_name_is_refused_without_naming_its_tenant() {
    let mut f = fixture(Shares::default());
    f.catalog(&acme(), import(rows("web", 1))).unwrap();
    let e = f.catalog(&globex(), import(rows("web", 1))).unwrap_err();
    assert!(
        e.message.contains("in use in this tower") && !e.message.contains("acme"),
        "{}",
        e.message
    );
}

fn pool(cidr: &str) -> CatalogCall {
    CatalogCall::PoolAdd {
        spec: PoolSpec {
            name: "v6".into(),
            cidr: cidr.parse().unwrap(),
            gateway: None,
            reserved: vec![],
        },
    }
}

fn allocate(count: u32) -> CatalogCall {
    CatalogCall::Allocate {
        pool: "v6".into(),
        owner: Owner::Server("a-0".into()),
        count,
    }
}

#[test]
fn allocations_past_the_call_or_tenant_share_are_refused_and_audited_as_ranges() {
    let mut f = fixture(Shares {
        allocated_per_tenant: 2_048,
        ..Shares::default()
    });
    f.catalog(&acme(), import(rows("a", 1))).unwrap();
    f.catalog(&acme(), pool("2001:db8::/64")).unwrap();
    let before = f.keys("");
    // The attack: 4,096 addresses a call, forty times.
    let e = f.catalog(&acme(), allocate(4_096)).unwrap_err();
    assert_eq!(e.kind, ApiFaultKind::Invalid);
    assert!(
        e.message
            .contains("1 to 1024 per call (limits.allocate_per_call)"),
        "{}",
        e.message
    );
    assert_eq!(f.keys(""), before, "nothing allocated, nothing audited");
    let CatalogAnswer::Allocations(got) = f.catalog(&acme(), allocate(1_024)).unwrap() else {
        panic!()
    };
    assert_eq!(got.len(), 1_024);
    let rec = f
        .audit()
        .into_iter()
        .rfind(|r| r.action == "ips_allocated")
        .unwrap();
    assert!(
        rec.summary.len() < 200,
        "{} bytes: {}",
        rec.summary.len(),
        rec.summary
    );
    assert!(
        rec.summary
            .contains("1024 address(es): 2001:db8::-2001:db8::3ff"),
        "{}",
        rec.summary
    );
    f.catalog(&acme(), allocate(1_024)).unwrap();
    let e = f.catalog(&acme(), allocate(1)).unwrap_err();
    assert!(
        e.message.contains("holds 2048") && e.message.contains("limits.allocated_per_tenant"),
        "{}",
        e.message
    );
    // Another tenant allocates in its own pool.
    f.catalog(&globex(), import(rows("gx", 1))).unwrap();
    f.catalog(&globex(), pool("2001:db8:1::/64")).unwrap();
    f.catalog(
        &globex(),
        CatalogCall::Allocate {
            pool: "v6".into(),
            owner: Owner::Server("gx-0".into()),
            count: 8,
        },
    )
    .unwrap();
}

/// Released, scattered addresses are audited as ranges too, bounded.
#[test]
fn scattered_releases_are_audited_as_bounded_ranges() {
    let mut f = fixture(Shares::default());
    f.catalog(&acme(), import(rows("a", 1))).unwrap();
    f.catalog(&acme(), pool("2001:db8::/64")).unwrap();
    let CatalogAnswer::Allocations(got) = f.catalog(&acme(), allocate(64)).unwrap() else {
        panic!()
    };
    for i in (0..64).step_by(2) {
        let address = got[i].address;
        f.catalog(
            &acme(),
            CatalogCall::Release {
                pool: "v6".into(),
                address: Some(address),
                owner: None,
            },
        )
        .unwrap();
    }
    f.catalog(
        &acme(),
        CatalogCall::Release {
            pool: "v6".into(),
            address: None,
            owner: Some(Owner::Server("a-0".into())),
        },
    )
    .unwrap();
    let rec = f
        .audit()
        .into_iter()
        .rfind(|r| r.action == "ips_released")
        .unwrap();
    assert!(rec.summary.len() < 1_024, "{}", rec.summary);
    assert!(rec.summary.contains("more in"), "{}", rec.summary);
}

#[test]
fn changes_past_the_tenant_s_share_are_refused_and_others_still_submit() {
    let mut f = fixture(Shares {
        changes_queued_per_tenant: 3,
        ..Shares::default()
    });
    let mut t = Turn::started();
    new_host(&mut f.tower, "acme", "a-1", Default::default(), &mut t);
    new_host(&mut f.tower, "globex", "g-1", Default::default(), &mut t);
    let submit = |target: &str| ApiCall::Submit {
        spec: vigie_changes::parse_change("t.yml", "title: t\nsteps:\n  - run: a\n").unwrap(),
        target: target.into(),
    };
    for _ in 0..3 {
        f.call(&acme(), submit("a-1")).unwrap();
    }
    let changes = f.tower.queues().pending();
    let e = f.call(&acme(), submit("a-1")).unwrap_err();
    assert_eq!(e.kind, ApiFaultKind::Unavailable);
    assert!(
        e.message.contains("limits.changes_queued_per_tenant")
            && e.message.contains("nothing queued"),
        "{}",
        e.message
    );
    assert_eq!(f.tower.queues().pending(), changes, "nothing queued");
    f.call(&globex(), submit("g-1"))
        .expect("another tenant still submits");
}

#[test]
fn hosts_past_the_tenant_s_share_are_refused_and_a_taken_id_names_no_tenant() {
    let mut f = fixture(Shares {
        hosts_per_tenant: 3,
        ..Shares::default()
    });
    let add = |host: &str| ApiCall::HostAdd {
        host: host.into(),
        labels: Default::default(),
    };
    for i in 0..3 {
        f.call(&acme(), add(&format!("a-{i}"))).unwrap();
    }
    let before = f.keys("");
    let e = f.call(&acme(), add("a-3")).unwrap_err();
    assert_eq!(e.kind, ApiFaultKind::Conflict);
    assert!(
        e.message.contains("tenant acme has 3 hosts")
            && e.message.contains("limits.hosts_per_tenant"),
        "{}",
        e.message
    );
    assert_eq!(f.keys(""), before, "nothing stored");
    // Host ids are tower-wide (orders are routed by exact id): another
    // tenant cannot take one, and is not told whose it is.
    let e = f.call(&globex(), add("a-0")).unwrap_err();
    assert!(!e.message.contains("acme"), "{}", e.message);
    f.call(&globex(), add("g-0"))
        .expect("another tenant has its own share");
}
