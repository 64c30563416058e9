//! A canary deploy with real parts: examples/shop deployed to two local
//! hosts, each behind its own real nginx, with HTTP load through each
//! host's nginx. `--canary 1` deploys the first host and waits — through
//! a restart of the deploy daemon and of the referee — for the
//! operator's `abort` (the canary host back to the previous version, not
//! a request lost) or `continue` (the other host too).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use vigie_deployer::{EnvRecord, Outcome, Part};
use vigie_tests::deploys::{record, shop_repo, Leftovers};
use vigie_tests::http_load::{get, LoadLoop, LoadReport};
use vigie_tests::{stdout_ok, Launcher, Setup};

const LONG: Duration = Duration::from_secs(120);
const HOSTS: [(&str, Ipv4Addr); 2] = [
    ("canary-1", Ipv4Addr::new(127, 0, 0, 21)),
    ("canary-2", Ipv4Addr::new(127, 0, 0, 22)),
];

/// The shop's repository (v1, v2, …) made in `work`; the environment of
/// revision `rev` without database, cache or migrations (a canary is a
/// rolling update), canary-2 running one replica with its own env.
fn environment(work: &Path, rev: &str) -> anyhow::Result<PathBuf> {
    let text = std::fs::read_to_string(work.join(format!("environment-{rev}.yml")))?;
    let text = &text[..text.find("databases:").context("databases")?];
    let text = format!(
        "{}overrides:\n  - hosts: canary-2\n    replicas: 1\n    env:\n      GREETING: from the override\n",
        text.replace("ports: 27100-27199", "ports: 27400-27499")
    );
    let file = work.join(format!("canary-{rev}.yml"));
    std::fs::write(&file, text)?;
    Ok(file)
}

fn proxy(record: &EnvRecord, host: &str, address: Ipv4Addr) -> anyhow::Result<SocketAddr> {
    let port = record
        .hosts
        .get(host)
        .and_then(|h| h.proxy_port)
        .context("no proxy port")?;
    Ok(SocketAddr::from((address, port)))
}

fn answers(record: &EnvRecord) -> anyhow::Result<Vec<String>> {
    HOSTS
        .iter()
        .map(|(host, addr)| {
            get(proxy(record, host, *addr)?, "/", Duration::from_secs(5))
                .map_err(anyhow::Error::msg)
        })
        .collect()
}

fn loads(record: &EnvRecord) -> anyhow::Result<Vec<LoadLoop>> {
    HOSTS
        .iter()
        .map(|(host, addr)| Ok(LoadLoop::start(proxy(record, host, *addr)?, LONG)))
        .collect()
}

/// Not one request failed; each host's answers began with the first
/// version of `seen`, ended with its last, and saw every one of them
/// (around a switch a graceful reload lets nginx's previous workers
/// answer a little longer: the versions may alternate briefly).
fn no_failure(loads: Vec<LoadLoop>, seen: [&[&str]; 2]) -> Vec<LoadReport> {
    let mut reports = Vec::new();
    for (((host, _), load), want) in HOSTS.iter().zip(loads).zip(seen) {
        let report = load.stop();
        eprintln!(
            "{host}: {} served, {} failed",
            report.served,
            report.failures.len()
        );
        assert!(
            report.failures.is_empty(),
            "{host}: {} failed: {:?}",
            report.failures.len(),
            report.failures
        );
        let mut runs: Vec<&str> = report
            .answers
            .iter()
            .map(|a| a.split_whitespace().nth(1).unwrap_or_default())
            .collect();
        runs.dedup();
        assert_eq!(runs.first(), want.first(), "{host}: {runs:?}");
        assert_eq!(runs.last(), want.last(), "{host}: {runs:?}");
        for v in want {
            assert!(runs.contains(v), "{host}: {v} in {runs:?}");
        }
        assert!(runs.iter().all(|v| want.contains(v)), "{host}: {runs:?}");
        reports.push(report);
    }
    reports
}

#[test]
fn a_canary_waits_through_restarts_then_abort_takes_it_back_and_continue_deploys_the_rest(
) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    shop_repo(work.path(), &[])?;
    let setup = Setup::new("canary")
        .host("canary-1", &[("role", "web"), ("address", "127.0.0.21")])
        .host("canary-2", &[("role", "web"), ("address", "127.0.0.22")]);
    let tower = Launcher::start(setup)?;
    let _leftovers = Leftovers(HOSTS.iter().map(|(h, _)| tower.root(h)).collect());
    let (v1, v2) = (
        environment(work.path(), "v1")?,
        environment(work.path(), "v2")?,
    );
    let deploy = |file: &Path, canary: bool| {
        let file = file.display().to_string();
        let mut args = vec!["deploy", file.as_str()];
        if canary {
            args.extend(["--canary", "1"]);
        }
        tower.cli(&args).and_then(stdout_ok)
    };

    // A canary needs a version to go back to: refused on a first deploy.
    let refused = tower.cli(&["deploy", &v1.display().to_string(), "--canary", "1"])?;
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("a canary needs a previous version"),
        "{refused:?}"
    );
    deploy(&v1, false)?;
    let r1 = record(&tower, "shop", "prod")?;
    assert!(answers(&r1)?.iter().all(|a| a.starts_with("shop v1")));
    // The override: canary-2 runs one replica, with its own env.
    let web = Part::parse("web").map_err(anyhow::Error::msg)?;
    assert_eq!(r1.hosts["canary-1"].services[&web].replicas, 2);
    assert_eq!(r1.hosts["canary-2"].services[&web].replicas, 1);
    let dotenv = std::fs::read_to_string(
        tower
            .root("canary-2")
            .join("srv/services/auto-shop-prod-web/1/replica-1/env"),
    )?;
    assert!(dotenv.contains("GREETING='from the override'"), "{dotenv}");

    // v2 with a canary of one host: canary-1 only, then it waits.
    let running = loads(&r1)?;
    let said = deploy(&v2, true)?;
    assert!(
        said.contains("waits in the tower after its canary"),
        "{said}"
    );
    let waiting = record(&tower, "shop", "prod")?;
    assert_eq!(
        waiting.history.last().map(|d| d.outcome),
        Some(Outcome::InProgress),
        "the inventory says what runs while it waits"
    );
    let now = answers(&waiting)?;
    assert!(
        now[0].starts_with("shop v2") && now[1].starts_with("shop v1"),
        "{now:?}"
    );
    let shown = stdout_ok(tower.cli(&["deployments", "show", "shop/prod"])?)?;
    assert!(shown.contains("waits after its canary"), "{shown}");
    // Issue 19: list and show say it too, in text and in JSON.
    let listed = stdout_ok(tower.cli(&["deployments", "list"])?)?;
    assert!(
        listed.contains("deploy running: rollout ")
            && listed.contains("waits after its canary of 1 host(s)"),
        "{listed}"
    );
    for args in [
        &["--json", "deployments", "show", "shop/prod"][..],
        &["--json", "deployments", "list"],
    ] {
        let out = stdout_ok(tower.cli(args)?)?;
        let v: serde_json::Value = serde_json::from_str(out.lines().next().unwrap_or_default())?;
        let running = &v["running"];
        assert_eq!(running["verb"], "deploy", "{args:?}: {out}");
        assert_eq!(running["canary"], 1, "{args:?}: {out}");
        assert_eq!(running["waiting"], true, "{args:?}: {out}");
        assert!(
            running["operator"].is_string() && running["since"].is_string(),
            "{out}"
        );
    }

    // It waits through a restart of the deploy daemon and of the referee.
    tower.kill_child("deployd")?;
    let resumed = tower.events().wait_n("the rollout resumed", 1, LONG, |e| {
        e.name == "rollout_resumed"
    })?;
    assert_eq!(resumed.str("phase"), Some("waiting for continue or abort"));
    tower.kill_child("referee")?;
    let watched = stdout_ok(tower.cli(&["deployments", "watch", "shop/prod"])?)?;
    assert!(watched.contains("waits in the tower"), "{watched}");
    let now = answers(&waiting)?;
    assert!(now[1].starts_with("shop v1"), "nothing moved: {now:?}");

    // Abort: canary-1 back to v1, not a request lost; the inventory is v1's.
    let aborted = stdout_ok(tower.cli(&["deployments", "abort", "shop/prod"])?)?;
    assert!(aborted.contains("canary aborted"), "{aborted}");
    let r = record(&tower, "shop", "prod")?;
    assert_eq!(r.hosts, r1.hosts, "every host runs v1 again");
    assert_eq!(r.components, r1.components);
    assert_eq!(
        r.history.last().map(|d| d.outcome),
        Some(Outcome::RolledBack)
    );
    assert!(answers(&r)?.iter().all(|a| a.starts_with("shop v1")));
    no_failure(running, [&["v1", "v2", "v1"], &["v1"]]);
    let again = tower.cli(&["deployments", "continue", "shop/prod"])?;
    assert!(!again.status.success(), "nothing waits any more");
    let out = stdout_ok(tower.cli(&["--json", "deployments", "show", "shop/prod"])?)?;
    let v: serde_json::Value = serde_json::from_str(out.trim())?;
    assert!(v["running"].is_null(), "nothing runs any more: {out}");

    // Again, and continue: both hosts on v2, not a request lost.
    let running = loads(&r)?;
    deploy(&v2, true)?;
    let went = stdout_ok(tower.cli(&["deployments", "continue", "shop/prod"])?)?;
    assert!(went.contains("succeeded"), "{went}");
    let r2 = record(&tower, "shop", "prod")?;
    assert_eq!(
        r2.history.last().map(|d| d.outcome),
        Some(Outcome::Succeeded)
    );
    assert!(answers(&r2)?.iter().all(|a| a.starts_with("shop v2")));
    no_failure(running, [&["v1", "v2"], &["v1", "v2"]]);
    Ok(())
}
