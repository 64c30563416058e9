//! Seed 002's chain, issue 25 item 4, over real SSH: "a server arrives →
//! it gets its addresses → it is set up → the application is deployed on
//! it". An environment of the catalog's shop says `follow: true` and runs
//! on the tower's own host; a catalog server is provisioned with
//! `--pool` (its address from an IP pool, put on its interface, its host
//! labelled with it),
//! over SSH to its own machine (a network namespace with a real sshd,
//! see `vigie_tests::sshd`); once its agent is online the tower deploys
//! the environment's current version to it, and the app answers through
//! that server's own nginx — no operator's deploy command in between.
//! Skipped, saying so, where namespaces cannot be made.
//!
//! The simulated server has no resolver it can reach (the machine's
//! `resolv.conf` names one outside the test's network): an app that
//! waits on a DNS lookup before it listens fails its health check there,
//! as it would on a real server in that state (the shop does none).

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use vigie_tests::deploys::{record, shop_repo, Leftovers};
use vigie_tests::sshd::{unavailable, SshMachines};
use vigie_tests::{stdout_ok as ok, Launcher};

const WAIT: Duration = Duration::from_secs(180);
const PORT: u16 = 7123;

fn app_file(repo: &str) -> String {
    format!(
        "name: shop\nversion: \"1.0\"\nrepository: file://{repo}\nservices:\n  - name: web\n\
         environments:\n  edge:\n    hosts: role=web\n    ports: 27590-27599\n    follow: true\n\
         \x20   services:\n      web:\n        repository: {repo}\n        revision: v1\n\
         \x20       start: exec python3 app.py\n        replicas: 1\n\
         \x20       health: {{ http: /health, retries: 100, interval: 100ms, timeout: 1s }}\n"
    )
}

#[test]
fn a_server_provisioned_with_a_pool_over_ssh_is_served_through_its_nginx() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return Ok(());
    }
    let dir = tempfile::tempdir()?;
    let repo = shop_repo(&dir.path().join("repo"), &[])?;
    let app = dir.path().join("shop.yml");
    std::fs::write(&app, app_file(&repo))?;

    let mut net = SshMachines::new(dir.path(), 1)?;
    let setup = net
        .setup("provision-follow", PORT, 1)
        .host("edge-1", &[("role", "web"), ("address", "127.0.0.61")]);
    let tower = Launcher::start_in_netns(setup, &net.tower_ns.clone())?;
    let server_root = dir.path().join("srv-0").join("root");
    let _leftovers = Leftovers(vec![tower.root("edge-1"), server_root]);
    let data = tower.data_dir().display().to_string();
    net.authorize(&ok(tower.cli(&[
        "servers",
        "ssh-key",
        "--data-dir",
        &data,
    ])?)?)?;
    net.start_sshd(0)?;
    let csv = dir.path().join("servers.csv");
    std::fs::write(&csv, net.csv(&[]))?;
    ok(tower.cli(&["servers", "import", &csv.display().to_string()])?)?;

    // The environment runs on the tower's own host first.
    ok(tower.cli(&["apps", "add", &app.display().to_string()])?)?;
    ok(tower.cli(&["deploy", "shop/edge", "--version", "1.0"])?)?;

    // The server's address comes from a pool the supplier's network
    // routes to it (through its link), an address the server does not
    // have yet: provisioning puts it on the server's interface.
    net.machines().ip_in(
        &net.tower_ns,
        &["route", "add", "203.0.113.0/29", "via", &net.servers[0].ip],
    )?;
    ok(tower.cli(&[
        "ips",
        "pool",
        "add",
        "lan",
        "203.0.113.0/29",
        "--gateway",
        "203.0.113.1",
    ])?)?;
    ok(tower.cli(&["servers", "provision", "srv-0", "--pool", "lan"])?)?;
    let events = tower.events();
    let e = events.wait_n("srv-0 enrolled or failed", 1, WAIT, |e| {
        (e.name == "server_enrolled" || e.name == "provision_failed")
            && e.str("server") == Some("srv-0")
    })?;
    anyhow::ensure!(e.name == "server_enrolled", "{e:?}");
    let put = events.wait("address_configured", WAIT)?;
    assert_eq!(put.str("address"), Some("203.0.113.2"), "{:?}", put.fields);
    assert_eq!(put.str("outcome"), Some("added"), "{:?}", put.fields);
    let followed = events.wait_n("srv-0 followed", 1, WAIT, |e| e.name == "deploy_followed")?;
    assert_eq!(
        followed.str("hosts"),
        Some("srv-0"),
        "{:?}",
        followed.fields
    );
    let ended = events.wait_n("the follow deploy ended", 2, WAIT, |e| {
        e.name == "rollout_ended" && e.str("environment") == Some("edge")
    })?;
    assert_eq!(ended.str("end"), Some("succeeded"), "{:?}", ended.fields);

    let hosts = ok(tower.cli(&["--json", "hosts"])?)?;
    let srv = hosts
        .lines()
        .find(|l| l.contains("\"srv-0\""))
        .context("srv-0 is a host")?;
    assert!(
        srv.contains("203.0.113.2"),
        "labelled with its pool address: {srv}"
    );
    let rec = record(&tower, "shop", "edge")?;
    let last = rec.history.last().context("a history")?;
    assert_eq!(rec.history.len(), 2, "recorded like any deploy");
    assert_eq!(last.version.as_deref(), Some("1.0"), "the current version");
    assert!(last.changes.contains_key("srv-0"), "{last:?}");
    let audit = ok(tower.cli(&["audit"])?)?;
    assert!(audit.contains("follow: srv-0 joined"), "{audit}");

    // Served through the server's own nginx, at its pool address, as a
    // client beyond the server (on the tower's machine) reaches it.
    let port = rec
        .hosts
        .get("srv-0")
        .and_then(|h| h.proxy_port)
        .context("srv-0 has a proxy port")?;
    let got = Command::new("ip")
        .args([
            "netns",
            "exec",
            &net.tower_ns,
            "curl",
            "-sS",
            "--max-time",
            "10",
        ])
        .arg(format!("http://203.0.113.2:{port}/"))
        .output()?;
    let body = String::from_utf8_lossy(&got.stdout);
    assert!(
        got.status.success() && body.contains("shop v1"),
        "served through srv-0's nginx: {body} {}",
        String::from_utf8_lossy(&got.stderr)
    );
    Ok(())
}
