//! The catalogs end to end, through the majordomo with operators' keys:
//! a supplier's CSV imported by the CLI (every error at once, nothing
//! written unless all is right, a dry run, sessions as records, audited),
//! the verbs checked at the door per tenant, and 50 clients racing for a
//! /26 without any address handed out twice.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::process::Output;

use vigie_client::ClientError;
use vigie_tests::front::{add_operator, admin, client_with, grants};
use vigie_tests::{Launcher, Setup};
use vigie_wire::catalog::{CatalogAnswer, CatalogCall, Owner, PoolSpec};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind};

const HEAD: &str = "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n";

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn a_supplier_csv_is_imported_whole_or_not_at_all() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("catalog"))?;
    let dir = t.dir.path().to_path_buf();
    let csv = |name: &str, body: &str| -> anyhow::Result<String> {
        let p = dir.join(name);
        std::fs::write(&p, format!("{HEAD}{body}"))?;
        Ok(p.display().to_string())
    };
    let good = csv(
        "good.csv",
        "web-1,10.1.0.1,22,debian,ovh,4,8,80,role=web\nweb-2,10.1.0.2,22,debian,ovh,4,8,80,role=web\ndb-1,10.1.0.3,2222,admin,hetzner,8,32,500,role=db\n",
    )?;

    // Three bad rows among good ones: all three reported, nothing stored.
    let bad = csv(
        "bad.csv",
        "ok-1,10.2.0.1,22,debian,ovh,4,8,80,\nbad-1,10.2.0.999,22,debian,ovh,4,8,80,\nbad-2,10.2.0.3,22,debian,ovh,x,8,80,\nok-1,10.2.0.4,22,debian,ovh,4,8,80,\n",
    )?;
    let o = t.cli(&["servers", "import", &bad])?;
    let out = text(&o);
    assert_eq!(o.status.code(), Some(64), "{out}");
    for want in [
        "line 3, column 'address'",
        "line 4, column 'cpu'",
        "line 5, column 'name'",
        "nothing imported",
    ] {
        assert!(out.contains(want), "missing {want:?} in {out}");
    }

    // A dry run goes to the tower and writes nothing.
    let o = t.cli(&["servers", "import", &good, "--dry-run"])?;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("3 server(s) would be imported"),
        "{}",
        text(&o)
    );
    let o = t.cli(&["servers", "sessions"])?;
    assert!(o.status.success() && o.stdout.is_empty(), "{}", text(&o));

    let o = t.cli(&["servers", "import", &good])?;
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("session 1: 3 server(s) imported from good.csv"),
        "{}",
        text(&o)
    );

    // One new row and one already in the catalog: refused whole, by the tower.
    let again = csv("again.csv", "web-3,10.1.0.4,22,debian,ovh,4,8,80,role=web\nweb-1,10.1.0.9,22,debian,ovh,4,8,80,role=web\n")?;
    let o = t.cli(&["servers", "import", &again])?;
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("line 3, column 'name': \"web-1\" is already in the catalog (session 1)"),
        "{}",
        text(&o)
    );

    let o = t.cli(&["servers", "list", "--json"])?;
    let names: Vec<String> = String::from_utf8(o.stdout)?
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).map(|v| v["name"].to_string()))
        .collect::<Result<_, _>>()?;
    assert_eq!(
        names,
        ["\"db-1\"", "\"web-1\"", "\"web-2\""],
        "web-3 was not stored"
    );
    let o = t.cli(&["servers", "list", "--session", "1", "--target", "role=web"])?;
    let listed = String::from_utf8(o.stdout)?;
    assert_eq!(
        listed.lines().count(),
        3,
        "a header and two servers: {listed}"
    );
    let o = t.cli(&["servers", "show", "db-1"])?;
    assert!(text(&o).contains("port 2222 user admin"), "{}", text(&o));
    let o = t.cli(&["servers", "show", "nope"])?;
    assert!(
        !o.status.success() && text(&o).contains("no server nope"),
        "{}",
        text(&o)
    );

    let o = t.cli(&["servers", "sessions", "--json"])?;
    let s: serde_json::Value = serde_json::from_slice(&o.stdout)?;
    assert_eq!(s["rows"], 3);
    assert_eq!(s["operator"], "admin");
    assert_eq!(s["file"], "good.csv");
    assert_eq!(s["digest"].as_str().map(str::len), Some(64));
    let o = t.cli(&["audit"])?;
    assert!(
        text(&o).contains("session 1: 3 server(s) from good.csv"),
        "{}",
        text(&o)
    );

    // The verbs at the door: servers.read lets one list, not manage pools;
    // a reader of another tenant sees none of this tenant's servers.
    let reader = add_operator(&t, &dir, "default", "reader", &grants(&["servers.read"])?)?;
    let mut reader = client_with(&t, &reader, None)?;
    let r = reader.call(ApiCall::Catalog(CatalogCall::Servers {
        session: None,
        target: None,
    }))?;
    assert!(matches!(r, ApiAnswer::Catalog(CatalogAnswer::Servers(v)) if v.len() == 3));
    let r = reader.call(ApiCall::Catalog(CatalogCall::Sessions));
    assert!(r.is_ok());
    let r = reader.call(ApiCall::Catalog(CatalogCall::Pools));
    assert!(matches!(r, Err(ClientError::Refused(f)) if f.kind == ApiFaultKind::Forbidden));
    let outsider = add_operator(&t, &dir, "globex", "reader", &grants(&["servers.read"])?)?;
    let r = client_with(&t, &outsider, None)?.call(ApiCall::Catalog(CatalogCall::Servers {
        session: None,
        target: None,
    }))?;
    assert_eq!(r, ApiAnswer::Catalog(CatalogAnswer::Servers(vec![])));
    Ok(())
}

#[test]
fn fifty_clients_racing_for_a_slash_26_never_share_an_address() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("race"))?;
    let dir = t.dir.path().to_path_buf();
    let app = dir.join("app.yml");
    std::fs::write(
        &app,
        "name: shop\nversion: 1.0.0\nrepository: https://git.example.org/shop.git\nservices:\n  - name: web\n    port: 8080\n",
    )?;
    let o = t.cli(&["apps", "add", &app.display().to_string()])?;
    assert!(o.status.success(), "{}", text(&o));
    let o = t.cli(&["ips", "pool", "add", "lan", "192.0.2.0/26"])?;
    assert!(o.status.success(), "{}", text(&o));
    let o = t.cli(&["ips", "pool", "add", "dmz", "192.0.2.32/27"])?;
    assert!(text(&o).contains("overlaps pool lan"), "{}", text(&o));
    let o = t.cli(&["ips", "allocate", "nope", "--for", "app:shop"])?;
    assert!(text(&o).contains("no pool nope"), "{}", text(&o));

    // 50 clients, each its own CURVE connection, each asking twice: 100
    // requests for 62 usable addresses, all in flight together.
    let barrier = std::sync::Barrier::new(50);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..50)
            .map(|_| {
                let (t, barrier) = (&t, &barrier);
                s.spawn(move || -> anyhow::Result<Vec<_>> {
                    let mut c = admin(t, None)?;
                    barrier.wait();
                    Ok((0..2)
                        .map(|_| {
                            c.call(ApiCall::Catalog(CatalogCall::Allocate {
                                pool: "lan".into(),
                                owner: Owner::App("shop".into()),
                                count: 1,
                            }))
                        })
                        .collect())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join()).collect()
    });
    let mut got: Vec<IpAddr> = Vec::new();
    let mut exhausted = 0;
    for r in results {
        let r = r.map_err(|_| anyhow::anyhow!("a client panicked"))??;
        for r in r {
            match r {
                Ok(ApiAnswer::Catalog(CatalogAnswer::Allocations(a))) => {
                    got.extend(a.iter().map(|a| a.address))
                }
                Err(ClientError::Refused(f))
                    if f.kind == ApiFaultKind::Conflict
                        && f.message.contains("pool lan exhausted") =>
                {
                    exhausted += 1
                }
                other => anyhow::bail!("unexpected: {other:?}"),
            }
        }
    }
    let unique: BTreeSet<IpAddr> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "an address was handed out twice");
    assert_eq!((got.len(), exhausted), (62, 38));
    let net: ipnet::IpNet = "192.0.2.0/26".parse()?;
    assert!(unique.iter().all(|a| net.contains(a)));

    // The table the tower keeps is the one the clients saw, after a restart too.
    let mut t = t;
    t.kill()?;
    t.restart()?;
    let r = admin(&t, None)?.call(ApiCall::Catalog(CatalogCall::Allocations {
        pool: "lan".into(),
    }))?;
    let ApiAnswer::Catalog(CatalogAnswer::Allocations(stored)) = r else {
        anyhow::bail!("{r:?}")
    };
    let stored: BTreeSet<IpAddr> = stored.iter().map(|a| a.address).collect();
    assert_eq!(stored, unique);
    let pool = PoolSpec {
        name: "lan".into(),
        cidr: net,
        gateway: None,
        reserved: vec![],
    };
    let r = admin(&t, None)?.call(ApiCall::Catalog(CatalogCall::PoolAdd { spec: pool }));
    assert!(matches!(r, Err(ClientError::Refused(f)) if f.kind == ApiFaultKind::Conflict));

    // What scripts read: owners spelled as `--for` takes them, plain fields.
    let json_lines = |args: &[&str]| -> anyhow::Result<Vec<serde_json::Value>> {
        let o = t.cli(args)?;
        anyhow::ensure!(o.status.success(), "{}", text(&o));
        Ok(String::from_utf8(o.stdout)?
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()?)
    };
    let listed = json_lines(&["ips", "list", "lan", "--json"])?;
    assert_eq!(listed.len(), 62);
    assert!(
        listed.iter().all(|a| a["owner"] == "app:shop"),
        "{listed:?}"
    );
    let pools = json_lines(&["ips", "pools", "--json"])?;
    assert_eq!(
        (&pools[0]["cidr"], &pools[0]["allocated"]),
        (&serde_json::json!("192.0.2.0/26"), &serde_json::json!(62))
    );
    let apps = json_lines(&["apps", "list", "--json"])?;
    assert_eq!(apps[0]["services"][0]["port"], 8080, "{apps:?}");
    Ok(())
}

/// `servers list --json`'s rows without what the tower adds (state,
/// session, time): what an export carries.
fn specs(t: &Launcher) -> anyhow::Result<Vec<serde_json::Value>> {
    let o = t.cli(&["servers", "list", "--json"])?;
    anyhow::ensure!(o.status.success(), "{}", text(&o));
    String::from_utf8(o.stdout)?
        .lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l)?;
            if let Some(m) = v.as_object_mut() {
                for k in ["state", "reason", "session", "added"] {
                    m.remove(k);
                }
            }
            Ok(v)
        })
        .collect()
}

#[test]
fn a_catalog_is_edited_exported_removed_and_an_import_undone() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("catalog-life"))?;
    let dir = t.dir.path().to_path_buf();
    let head = "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels,host_key\n";
    let first = dir.join("first.csv");
    std::fs::write(
        &first,
        format!(
            "{head}web-1,10.3.0.1,22,debian,\"ovh, gra\",4,8,80,role=web,\n\
             web-2,10.3.0.2,22,debian,ovh,4,8,80,role=web,ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKbOZWTxC1Jv1TOGb0EtvCql8xFA2bKc/05y4R2CBTP+\n\
             db-1,10.3.0.3,2222,admin,hetzner,8,32,500,role=db,\n"
        ),
    )?;
    let ok = |args: &[&str]| -> anyhow::Result<String> {
        let o = t.cli(args)?;
        anyhow::ensure!(o.status.success(), "{args:?}: {}", text(&o));
        Ok(String::from_utf8(o.stdout)?)
    };
    ok(&["servers", "import", &first.display().to_string()])?;

    // An edit is checked as an import row is: every bad value at once,
    // nothing sent; the tower refuses another server's address.
    let o = t.cli(&[
        "servers",
        "edit",
        "web-1",
        "--set",
        "address=10.3.0.300",
        "--set",
        "cpu=four",
        "--set",
        "name=web-9",
    ])?;
    assert_eq!(o.status.code(), Some(64), "{}", text(&o));
    for want in ["3 error(s)", "address:", "cpu:", "name:"] {
        assert!(text(&o).contains(want), "missing {want:?}: {}", text(&o));
    }
    let o = t.cli(&["servers", "edit", "web-1", "--set", "address=10.3.0.2"])?;
    assert!(
        !o.status.success() && text(&o).contains("already server \"web-2\"'s"),
        "{}",
        text(&o)
    );
    ok(&[
        "servers",
        "edit",
        "web-1",
        "--set",
        "ram_gb=16",
        "--set",
        "labels=role=web;env=prod",
    ])?;
    let web1: serde_json::Value =
        serde_json::from_str(&ok(&["servers", "show", "web-1", "--json"])?)?;
    assert_eq!(web1["ram_gb"], 16);
    assert_eq!(web1["labels"]["env"], "prod");
    let audit = ok(&["audit", "--host", "web-1"])?;
    assert!(
        audit.contains("server_edited") && audit.contains("ram_gb \"8\" → \"16\""),
        "{audit}"
    );

    // The export is the import's CSV, every field as the catalog holds it.
    let before = specs(&t)?;
    let exported = ok(&["servers", "export"])?;
    assert!(exported.starts_with(head), "{exported}");
    assert_eq!(exported.lines().count(), 4, "{exported}");
    let export_file = dir.join("export.csv");
    std::fs::write(&export_file, &exported)?;
    let only_db = ok(&["servers", "export", "--target", "role=db"])?;
    assert_eq!(only_db.lines().count(), 2, "{only_db}");

    // A server holding an address is removed only with --force, which
    // releases it; audited.
    ok(&["ips", "pool", "add", "lan", "192.0.2.0/28"])?;
    ok(&["ips", "allocate", "lan", "--for", "server:web-2"])?;
    let o = t.cli(&["servers", "remove", "web-2"])?;
    assert!(
        !o.status.success() && text(&o).contains("holds 1 address(es)"),
        "{}",
        text(&o)
    );
    let o = t.cli(&["servers", "remove", "web-2", "nope"])?;
    assert!(!o.status.success() && text(&o).contains("no server(s) nope"));
    let removed = ok(&["servers", "remove", "web-2", "--force"])?;
    assert!(removed.contains("released 192.0.2.1"), "{removed}");
    assert!(ok(&["ips", "list", "lan"])?.trim().is_empty());
    let audit = ok(&["audit"])?;
    assert!(audit.contains("servers_removed"), "{audit}");

    // The first session undone: its two servers left go; the record stays.
    let undone = ok(&["servers", "sessions", "undo", "1"])?;
    assert!(undone.contains("2 server(s) removed"), "{undone}");
    assert!(specs(&t)?.is_empty());
    let o = t.cli(&["servers", "sessions", "undo", "1"])?;
    assert!(!o.status.success() && text(&o).contains("undone already"));
    let s: serde_json::Value = serde_json::from_str(&ok(&["servers", "sessions", "--json"])?)?;
    assert!(s["undone"].is_string(), "{s}");
    assert!(ok(&["audit"])?.contains("session_undone"));

    // The export imports again: the same servers, field for field.
    ok(&["servers", "import", &export_file.display().to_string()])?;
    assert_eq!(specs(&t)?, before);

    // Once one of its servers was provisioned, a session is not undone.
    ok(&["servers", "provision", "db-1"])?;
    let o = t.cli(&["servers", "sessions", "undo", "2"])?;
    assert!(
        !o.status.success() && text(&o).contains("db-1 ("),
        "{}",
        text(&o)
    );
    assert_eq!(specs(&t)?.len(), 3, "nothing removed");
    Ok(())
}
