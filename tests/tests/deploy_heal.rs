//! Health that heals (seed 003): after a rollout the host's agent keeps
//! checking each replica; a replica whose health endpoint starts failing
//! is restarted (SIGTERM → grace → SIGKILL → start) and serves again, not
//! one request through the real nginx failing meanwhile; one that a
//! restart does not cure is restarted a bounded number of times, then
//! stopped and left stopped. Counted in the host's metrics, written to the
//! service's log. Every wait is on the tower's structured events.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use vigie_tests::deploys::{record, shop_repo, Leftovers};
use vigie_tests::http_load::{get, LoadLoop};
use vigie_tests::Event;
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::ChangeState;

const LONG: Duration = Duration::from_secs(120);
const HOST: &str = "heal-1";
const SERVICE: &str = "auto-shop-heal-web";

fn environment(repo: &str, sick: &Path) -> String {
    format!(
        "app: shop\nenvironment: heal\nhosts: role=shop\nports: 27300-27399\n\
         services:\n  web:\n    repository: {repo}\n    revision: v1\n    start: exec python3 app.py\n    replicas: 2\n\
         \x20   health:\n      http: /health\n      retries: 10\n      interval: 100ms\n      timeout: 200ms\n\
         \x20     every: 200ms\n      restart_after: 3\n\
         \x20   stop_grace: 2s\n    drain: 200ms\n    env:\n      SICK_DIR: {}\n",
        sick.display()
    )
}

fn of_replica<'a>(name: &'a str, replica: &'a str) -> impl Fn(&Event) -> bool + 'a {
    move |e| e.name == name && e.str("host") == Some(HOST) && e.str("replica") == Some(replica)
}

fn pid_in(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file))
        .ok()
        .map(|s| s.trim().to_string())
}

/// The host's metrics as `vigie --json hosts --metrics` prints them, once
/// the host sent the sample its health watch asked for, saying `ok`.
fn metrics_when(
    tower: &Launcher,
    ok: impl Fn(&Event) -> bool,
) -> anyhow::Result<serde_json::Value> {
    tower
        .events()
        .wait_n("the sample after the health watch acted", 1, LONG, |e| {
            e.name == "host_sample_sent" && e.str("host") == Some(HOST) && ok(e)
        })?;
    let out = tower.cli(&["--json", "hosts", "--metrics"])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["host"] == HOST)
        .with_context(|| format!("no metrics of {HOST}: {text}"))
}

#[test]
fn an_unhealthy_replica_is_restarted_under_load_and_one_that_stays_sick_is_left_stopped(
) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let repo = shop_repo(work.path(), &[])?;
    let sick = work.path().join("sick");
    std::fs::create_dir_all(&sick)?;
    let file = work.path().join("environment-heal.yml");
    std::fs::write(&file, environment(&repo, &sick))?;

    let setup = Setup::new("heal").host(HOST, &[("role", "shop"), ("address", "127.0.0.4")]);
    let tower = Launcher::start(setup)?;
    let _leftovers = Leftovers(vec![tower.root(HOST)]);
    let out = tower.cli(&["deploy", &file.display().to_string()])?;
    anyhow::ensure!(
        out.status.success(),
        "deploy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let r = record(&tower, "shop", "heal")?;
    let ids: Vec<String> = r
        .history
        .last()
        .map(|d| d.changes.values().cloned().collect())
        .unwrap_or_default();
    let done = tower.wait_final(&ids, LONG)?;
    assert!(
        done.iter().all(|c| c.state == ChangeState::Succeeded),
        "{done:#?}"
    );
    let port = r
        .hosts
        .get(HOST)
        .and_then(|h| h.proxy_port)
        .context("no proxy port")?;
    let nginx = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 4), port));
    let instance = tower.root(HOST).join(format!("srv/services/{SERVICE}/1"));
    let replica_port = |r: &str| -> anyhow::Result<SocketAddr> {
        let env = std::fs::read_to_string(instance.join(format!("replica-{r}/env")))?;
        let port: u16 = env
            .lines()
            .find_map(|l| l.strip_prefix("PORT='")?.strip_suffix('\'')?.parse().ok())
            .context("a PORT")?;
        Ok(SocketAddr::from((Ipv4Addr::new(127, 0, 0, 4), port)))
    };

    // Replica 1 goes bad: its /health answers 500 until it is restarted.
    let supervisor_before = pid_in(&instance.join("replica-1"), "supervisor.pid");
    let app_before = pid_in(&instance.join("replica-1"), "app.pid");
    let load = LoadLoop::start(nginx, LONG);
    std::fs::write(sick.join("sick-1"), "")?;
    let restarted = tower.events().wait_n(
        "replica 1 restarted",
        1,
        LONG,
        of_replica("replica_restarted", "1"),
    )?;
    assert_eq!(restarted.u64("failures"), Some(3), "{:?}", restarted.fields);
    assert_eq!(restarted.str("service"), Some(SERVICE));
    assert!(
        restarted.str("reason").is_some_and(|r| r.contains("500")),
        "{:?}",
        restarted.fields
    );
    let recovered = tower.events().wait_n(
        "replica 1 recovered",
        1,
        LONG,
        of_replica("replica_recovered", "1"),
    )?;
    // The same supervisor, a new app process, healthy, serving.
    assert_eq!(
        pid_in(&instance.join("replica-1"), "supervisor.pid"),
        supervisor_before
    );
    assert_ne!(pid_in(&instance.join("replica-1"), "app.pid"), app_before);
    assert_eq!(
        get(replica_port("1")?, "/health", Duration::from_secs(5)).map_err(anyhow::Error::msg)?,
        "ok"
    );
    // Through nginx too: requests sent after it recovered reach it.
    let recovered_at = humantime::parse_rfc3339(recovered.str("timestamp").context("a time")?)?;
    for _ in 0..20 {
        get(nginx, "/", Duration::from_secs(5)).map_err(anyhow::Error::msg)?;
    }
    let report = load.stop();
    assert!(
        report.failures.is_empty(),
        "{} requests failed through nginx: {:?}",
        report.failures.len(),
        report.failures
    );
    let after: Vec<&String> = report
        .sent
        .iter()
        .filter(|(at, _)| *at > recovered_at)
        .map(|(_, i)| &report.answers[*i])
        .collect();
    assert!(
        after.iter().any(|a| a.contains("replica 1")),
        "no answer of replica 1 after it recovered: {after:?}"
    );
    let restarted_at = humantime::parse_rfc3339(restarted.str("timestamp").context("a time")?)?;
    eprintln!(
        "{} requests served through nginx while replica 1 was restarted, none failed; \
         restart to healthy again: {:?} (event times)",
        report.served,
        recovered_at
            .duration_since(restarted_at)
            .unwrap_or_default()
    );

    // Told in the service's log (a JSON line), and in the host's metrics.
    let logs = tower.cli(&["logs", HOST, "--service", SERVICE])?;
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        text.contains("\"event\":\"replica_restarted\"") && text.contains("\"replica\":\"1\""),
        "{text}"
    );
    let m = metrics_when(&tower, |e| e.u64("replica_restarts") == Some(1))?;
    assert_eq!(m["replica_restarts"], 1, "{m}");

    // Replica 2 goes bad for good: restarted a bounded number of times,
    // then stopped and left stopped; replica 1 serves every request.
    let load = LoadLoop::start(nginx, LONG);
    std::fs::write(sick.join("always-sick-2"), "")?;
    let abandoned = tower.events().wait_n(
        "replica 2 abandoned",
        1,
        LONG,
        of_replica("replica_abandoned", "2"),
    )?;
    let restarts = tower
        .events()
        .snapshot()
        .iter()
        .filter(|e| of_replica("replica_restarted", "2")(e))
        .count();
    assert_eq!(
        restarts, 5,
        "restarted five times in ten minutes, then given up"
    );
    assert_eq!(abandoned.u64("restarts"), Some(5));
    assert!(
        pid_in(&instance.join("replica-2"), "supervisor.pid").is_none(),
        "the supervisor of replica 2 is gone"
    );
    assert!(get(replica_port("2")?, "/health", Duration::from_secs(2)).is_err());
    let m = metrics_when(&tower, |e| e.u64("replicas_given_up") == Some(1))?;
    assert_eq!(m["replicas_given_up"], 1, "{m}");
    assert_eq!(m["replica_restarts"], 6, "{m}");
    let running: Vec<(String, bool)> = m["services"]
        .as_array()
        .context("services")?
        .iter()
        .map(|s| {
            (
                s["replica"].as_str().unwrap_or_default().to_string(),
                s["running"] == true,
            )
        })
        .collect();
    assert_eq!(running, [("1".into(), true), ("2".into(), false)]);
    let report = load.stop();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(report.served > 10, "{report:?}");
    // Still given up: no restart since.
    assert_eq!(
        tower
            .events()
            .snapshot()
            .iter()
            .filter(|e| of_replica("replica_restarted", "2")(e))
            .count(),
        5
    );
    let logs = tower.cli(&["logs", HOST, "--service", SERVICE])?;
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(text.contains("\"event\":\"replica_abandoned\""), "{text}");
    Ok(())
}

/// A host behind an agent heals its replicas with the tower gone: the
/// watch is the agent's, not the tower's.
#[test]
fn an_agent_heals_its_replicas_with_the_tower_gone() -> anyhow::Result<()> {
    const FAR: &str = "far-heal";
    let work = tempfile::tempdir()?;
    let repo = shop_repo(work.path(), &[])?;
    let sick = work.path().join("sick");
    std::fs::create_dir_all(&sick)?;
    let file = work.path().join("environment-heal.yml");
    std::fs::write(&file, environment(&repo, &sick))?;

    let mut tower = Launcher::start(Setup::new("far"))?;
    let dir = tower.dir.path().to_path_buf();
    let key = dir.join("far.key");
    let public = vigie_majordomo::keys::write_new(&key)?.public_z85();
    let out = tower.cli(&[
        "hosts",
        "add",
        FAR,
        "--key",
        &public,
        "--label",
        "role=shop",
        "--label",
        "address=127.0.0.5",
    ])?;
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tower_key = std::fs::read_to_string(tower.data_dir().join("keys/tower.public"))?;
    let root = dir.join("far-root");
    let _leftovers = Leftovers(vec![root.clone()]);
    let agent = vigie_tests::Daemon::agent(
        &tower.endpoint("majordomo"),
        &tower_key,
        &key,
        FAR,
        &root,
        &dir.join("agents/far"),
    )?;
    agent.events.wait("agent_connected", LONG)?;
    let out = tower.cli(&["deploy", &file.display().to_string()])?;
    anyhow::ensure!(
        out.status.success(),
        "deploy: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let port = record(&tower, "shop", "heal")?
        .hosts
        .get(FAR)
        .and_then(|h| h.proxy_port)
        .context("no proxy port")?;
    let nginx = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 5), port));

    // The tower is gone; the host's nginx and replicas are not.
    tower.kill()?;
    let load = LoadLoop::start(nginx, LONG);
    std::fs::write(sick.join("sick-2"), "")?;
    let of_far = |name: &'static str| {
        move |e: &Event| {
            e.name == name && e.str("host") == Some(FAR) && e.str("replica") == Some("2")
        }
    };
    let restarted = agent.events.wait_n(
        "replica 2 restarted by the agent",
        1,
        LONG,
        of_far("replica_restarted"),
    )?;
    assert_eq!(restarted.u64("failures"), Some(3), "{:?}", restarted.fields);
    agent
        .events
        .wait_n("replica 2 recovered", 1, LONG, of_far("replica_recovered"))?;
    for _ in 0..20 {
        get(nginx, "/", Duration::from_secs(5)).map_err(anyhow::Error::msg)?;
    }
    let report = load.stop();
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert!(
        report.answers.iter().any(|a| a.contains("replica 2")),
        "{:?}",
        report.answers
    );
    Ok(())
}
