//! Issue 25 item 4, a server that joins is served: an environment that
//! says `follow: true` is deployed, then a host its selector matches comes
//! online for the first time — and the tower deploys the environment's
//! current version (the catalog's) to it with no operator's deploy
//! command: recorded like any deploy, audited, and the new host serves
//! the app through its own nginx. Every wait is on the tower's events.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;
use vigie_tests::deploys::{record, shop_repo, Leftovers};
use vigie_tests::http_load::get;
use vigie_tests::{stdout_ok as ok, Launcher, Setup};

const LONG: Duration = Duration::from_secs(120);

fn app_file(repo: &str) -> String {
    format!(
        "name: shop\nversion: \"1.0\"\nrepository: file://{repo}\nservices:\n  - name: web\n\
         environments:\n  edge:\n    hosts: role=edge\n    ports: 27580-27589\n    follow: true\n\
         \x20   services:\n      web:\n        repository: {repo}\n        revision: v1\n\
         \x20       start: exec python3 app.py\n        replicas: 1\n\
         \x20       health: {{ http: /health, retries: 50, interval: 100ms, timeout: 1s }}\n"
    )
}

#[test]
fn a_host_that_joins_a_following_environment_is_deployed_to_and_serves() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let repo = shop_repo(work.path(), &[])?;
    let app = work.path().join("shop.yml");
    std::fs::write(&app, app_file(&repo))?;

    let setup = Setup::new("follow").host("edge-1", &[("role", "edge"), ("address", "127.0.0.58")]);
    let mut t = Launcher::start(setup)?;
    let _leftovers = Leftovers(vec![t.root("edge-1"), t.root("edge-2")]);
    ok(t.cli(&["apps", "add", &app.display().to_string()])?)?;
    ok(t.cli(&["deploy", "shop/edge", "--version", "1.0"])?)?;
    let first = record(&t, "shop", "edge")?;
    assert_eq!(first.hosts.keys().collect::<Vec<_>>(), vec!["edge-1"]);

    // edge-2 is registered, then its plug comes online: nobody deploys.
    ok(t.cli(&[
        "hosts",
        "add",
        "edge-2",
        "--label",
        "role=edge",
        "--label",
        "address=127.0.0.59",
    ])?)?;
    t.start_plug("edge-2", &[])?;
    let ended = t.events().wait_n("the follow deploy ended", 2, LONG, |e| {
        e.name == "rollout_ended" && e.str("environment") == Some("edge")
    })?;
    assert_eq!(ended.str("end"), Some("succeeded"), "{:?}", ended.fields);
    let followed = t.events().wait("deploy_followed", LONG)?;
    assert_eq!(
        followed.str("hosts"),
        Some("edge-2"),
        "{:?}",
        followed.fields
    );

    let rec = record(&t, "shop", "edge")?;
    let last = rec.history.last().context("a history")?;
    assert_eq!(rec.history.len(), 2, "recorded like any deploy");
    assert_eq!(last.version.as_deref(), Some("1.0"), "the current version");
    assert!(last.changes.contains_key("edge-2"), "{last:?}");
    let port = rec
        .hosts
        .get("edge-2")
        .and_then(|h| h.proxy_port)
        .context("edge-2 has a proxy port")?;
    let body = get(
        SocketAddr::from((Ipv4Addr::new(127, 0, 0, 59), port)),
        "/",
        Duration::from_secs(5),
    )
    .map_err(anyhow::Error::msg)?;
    assert!(body.contains("v1"), "served through edge-2's nginx: {body}");
    let audit = ok(t.cli(&["audit"])?)?;
    assert!(audit.contains("follow: edge-2 joined"), "{audit}");

    // Joined once: nothing more is deployed when nothing joins.
    let settled = t.events().snapshot();
    let more = settled
        .iter()
        .filter(|e| e.name == "deploy_followed")
        .count();
    assert_eq!(more, 1, "one follow deploy");
    Ok(())
}
