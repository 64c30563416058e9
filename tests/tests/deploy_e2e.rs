//! The deployer with real parts: examples/shop (a real HTTP app in a real
//! git repository) deployed by change requests to two local hosts, each
//! with its own real nginx, with its database on a real PostgreSQL and its
//! cache on a real Redis; HTTP load through nginx during the updates.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use vigie_deployer::{Component, EnvRecord, Outcome, Part};
use vigie_tests::deploys::{record, shop_repo, Leftovers};
use vigie_tests::http_load::{get, LoadLoop, MAINTENANCE};
use vigie_tests::servers::{Postgres, Redis};
use vigie_tests::{Launcher, Setup};
use vigie_wire::deploy::{DeployAnswer, DeployCall};
use vigie_wire::tower::{ApiAnswer, ApiCall, ChangeState, ChangeView};

const LONG: Duration = Duration::from_secs(90);

/// Runs `vigie deploy FILE` (through the majordomo, as the admin) and
/// returns the environment's record and the changes of this deploy.
fn deploy(tower: &Launcher, file: &Path) -> anyhow::Result<(EnvRecord, Vec<ChangeView>)> {
    deploy_with(tower, file, &[])
}

fn deploy_with(
    tower: &Launcher,
    file: &Path,
    flags: &[&str],
) -> anyhow::Result<(EnvRecord, Vec<ChangeView>)> {
    deploy_said(tower, file, flags).map(|(r, v, _)| (r, v))
}

/// [`deploy_with`], with what the CLI printed (the rollout's lines).
fn deploy_said(
    tower: &Launcher,
    file: &Path,
    flags: &[&str],
) -> anyhow::Result<(EnvRecord, Vec<ChangeView>, String)> {
    let file = file.display().to_string();
    let mut args = vec!["deploy", file.as_str()];
    args.extend(flags);
    let out = tower.cli(&args)?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let record = record(tower, "shop", "prod")?;
    let ids: Vec<String> = record
        .history
        .last()
        .map(|d| d.changes.values().cloned().collect())
        .unwrap_or_default();
    let views = tower.wait_final(&ids, LONG)?;
    let all_ok = views.iter().all(|c| c.state == ChangeState::Succeeded);
    assert_eq!(
        out.status.success(),
        all_ok,
        "exit status vs changes: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((record, views, text))
}

/// The changes that ended on `host`, in order: each id with the time its
/// `change_finished` event was stamped by the launcher (`secs.millis`,
/// rounded down; a millisecond is added so that any request sent after it
/// was sent after the change ended on the host).
fn change_ends(
    tower: &Launcher,
    host: &str,
) -> anyhow::Result<Vec<(String, std::time::SystemTime)>> {
    tower
        .events()
        .snapshot()
        .iter()
        .filter(|e| e.name == "change_finished" && e.str("host") == Some(host))
        .map(|e| {
            let id = e.str("change").context("a change id")?.to_string();
            let stamp = e.str("timestamp").context("a timestamp")?;
            // RFC 3339 to the millisecond: the next millisecond is surely after.
            let t = humantime::parse_rfc3339(stamp)? + Duration::from_millis(1);
            Ok((id, t))
        })
        .collect()
}

/// Where a host's rolling update spent its time (BENCHMARKS.md): the
/// change from submission to end, and the steps grouped by what they wait
/// for; what is left is Vigie's own overhead (queueing, reports, scripts).
fn timing(change: &ChangeView) -> String {
    let mut by_kind = std::collections::BTreeMap::<&str, u64>::new();
    for step in &change.steps {
        let ms = step.result.as_ref().map_or(0, |r| r.duration_ms);
        let kind = match step.name.split_whitespace().next().unwrap_or_default() {
            "fetch" | "install" => "fetch+install",
            "health" => "health checks",
            "stop" => "drain+stop",
            "start" => "start",
            "switch" => "proxy switch",
            _ => "files",
        };
        *by_kind.entry(kind).or_default() += ms;
    }
    let total = change.updated_ms.saturating_sub(change.submitted_ms);
    let steps: u64 = by_kind.values().sum();
    format!(
        "rolling update on {}: {total} ms in all; {by_kind:?}; outside steps {} ms",
        change.host,
        total.saturating_sub(steps)
    )
}

/// What the step whose name starts with `name` printed on stderr (its tail).
fn step_stderr(change: &ChangeView, name: &str) -> anyhow::Result<String> {
    let step = change
        .steps
        .iter()
        .find(|s| s.name.starts_with(name))
        .with_context(|| format!("no step {name:?} in {change:#?}"))?;
    Ok(step
        .result
        .as_ref()
        .map(|r| r.stderr_tail.clone())
        .unwrap_or_default())
}

/// Every host's nginx answers with a body starting with `prefix`.
fn every_host_answers(
    record: &EnvRecord,
    hosts: &[(&str, Ipv4Addr)],
    prefix: &str,
) -> anyhow::Result<()> {
    for (host, addr) in hosts {
        let body = get(proxy(record, host, *addr)?, "/", Duration::from_secs(5))
            .map_err(anyhow::Error::msg)?;
        assert!(body.starts_with(prefix), "{host}: {body}");
    }
    Ok(())
}

/// Every host's nginx answers the maintenance page (503, Retry-After).
fn every_host_in_maintenance(record: &EnvRecord, hosts: &[(&str, Ipv4Addr)]) -> anyhow::Result<()> {
    for (host, addr) in hosts {
        let answer = vigie_tests::http_load::request(
            proxy(record, host, *addr)?,
            "/",
            Duration::from_secs(5),
        )
        .map_err(anyhow::Error::msg)?;
        assert!(
            answer.is_maintenance(),
            "{host}: {} {}",
            answer.status,
            answer.body
        );
    }
    Ok(())
}

/// One HTTP load loop per host, through its nginx.
fn start_loads(record: &EnvRecord, hosts: &[(&str, Ipv4Addr)]) -> anyhow::Result<Vec<LoadLoop>> {
    hosts
        .iter()
        .map(|(host, addr)| Ok(LoadLoop::start(proxy(record, host, *addr)?, LONG)))
        .collect()
}

/// How many migrations the shop's database has recorded.
fn migrations_run(pg: &Postgres) -> anyhow::Result<String> {
    pg.query(
        "auto-shop-prod-main",
        "SELECT count(*) FROM shop_migrations",
    )
}

fn proxy(record: &EnvRecord, host: &str, address: Ipv4Addr) -> anyhow::Result<SocketAddr> {
    let port = record
        .hosts
        .get(host)
        .and_then(|h| h.proxy_port)
        .context("no proxy port")?;
    Ok(SocketAddr::from((address, port)))
}

#[test]
fn rolling_updates_behind_nginx_lose_no_request_and_a_broken_version_rolls_back(
) -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let pg = Postgres::start()?;
    let redis = Redis::start()?;
    let (admin, cache) = (pg.admin_url(), redis.url());
    shop_repo(
        work.path(),
        &[("PG_ADMIN_URL", &admin), ("REDIS_URL", &cache)],
    )?;
    let setup = Setup::new("deploy")
        .host("shop-1", &[("role", "web"), ("address", "127.0.0.2")])
        .host("shop-2", &[("role", "web"), ("address", "127.0.0.3")]);
    // Declared before the guard: dropped after it, so the host roots (in
    // the tower's dir) are still there when the guard reads their pid files.
    let mut tower = Launcher::start(setup)?;
    let _leftovers = Leftovers(vec![tower.root("shop-1"), tower.root("shop-2")]);
    let hosts = [
        ("shop-1", Ipv4Addr::new(127, 0, 0, 2)),
        ("shop-2", Ipv4Addr::new(127, 0, 0, 3)),
    ];
    let web = Component::Code(Part::parse("web").map_err(anyhow::Error::msg)?);
    let file = |v: &str| work.path().join(format!("environment-{v}.yml"));

    // A spec with an unknown key is refused before anything is sent,
    // naming the place (exit 64, like a bad change file).
    let bad = std::fs::read_to_string(file("v1"))?
        .replace("    replicas: 2\n", "    replicas: 2\n    replica: 3\n");
    std::fs::write(file("bad"), bad)?;
    let refused = tower.cli(&["deploy", &file("bad").display().to_string()])?;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("environment-bad.yml:14:5: field 'services.web.replica': unknown field"),
        "{stderr}"
    );

    // --plan shows what would change and does nothing.
    let planned = tower.cli(&["deploy", "--plan", &file("v1").display().to_string()])?;
    let text = String::from_utf8_lossy(&planned.stdout);
    assert!(planned.status.success(), "{text}");
    assert!(text.contains("code:web: instance 1 (new)"), "{text}");
    assert!(text.contains("switch the proxy to web #1"), "{text}");
    assert!(
        !tower.root("shop-1").join("srv/services").exists(),
        "--plan touched a host"
    );

    // v1, two replicas on each host.
    let (r, done) = deploy(&tower, &file("v1"))?;
    assert_eq!(done.len(), 2, "{done:#?}");
    assert!(
        done.iter().all(|c| c.state == ChangeState::Succeeded),
        "{done:#?}"
    );
    assert_eq!(r.components[&web].instance, 1);
    every_host_answers(&r, &hosts, "shop v1 instance 1")?;
    // The first deploy made the database and its role, and ran the
    // migrations there before anything started.
    assert_eq!(migrations_run(&pg)?, "1");
    assert_eq!(
        pg.query(
            "postgres",
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'auto-shop-prod-main'"
        )?,
        "auto-shop-prod-main"
    );

    // v2 under load: not one failed request, answers move from v1 to v2.
    let loads = start_loads(&r, &hosts)?;
    let (r, done) = deploy(&tower, &file("v2"))?;
    assert!(
        done.iter().all(|c| c.state == ChangeState::Succeeded),
        "{done:#?}"
    );
    for ((host, _), load) in hosts.iter().zip(loads) {
        let report = load.stop();
        assert!(
            report.failures.is_empty(),
            "{host}: {} failed: {:?}",
            report.failures.len(),
            report.failures
        );
        assert!(report.served > 10, "{host}: {report:?}");
        assert_eq!(
            report.maintenance, 0,
            "no migration pending: no maintenance"
        );
        eprintln!(
            "{host}: {} requests served during the v2 deploy, {} failed, slowest {:?}",
            report.served,
            report.failures.len(),
            report.slowest
        );
        assert!(
            report
                .answers
                .first()
                .is_some_and(|a| a.starts_with("shop v1")),
            "{host}: {:?}",
            report.answers
        );
        assert!(
            report
                .answers
                .last()
                .is_some_and(|a| a.starts_with("shop v2")),
            "{host}: {:?}",
            report.answers
        );
    }
    assert_eq!(r.components[&web].instance, 2);
    for change in &done {
        eprintln!("{}", timing(change));
    }

    // v3 is broken: its health check fails, the change rolls back, not a
    // request fails, v2 still answers, and instance 2 stays current.
    let loads = start_loads(&r, &hosts)?;
    let (r3, done) = deploy(&tower, &file("v3"))?;
    assert_eq!(
        done.len(),
        1,
        "the deploy stops at the first host that fails: {done:#?}"
    );
    assert!(
        matches!(done[0].state, ChangeState::RolledBack { .. }),
        "{done:#?}"
    );
    for ((host, _), load) in hosts.iter().zip(loads) {
        let report = load.stop();
        assert!(report.failures.is_empty(), "{host}: {:?}", report.failures);
        assert!(
            report.answers.iter().all(|a| a.starts_with("shop v2")),
            "{host}: {:?}",
            report.answers
        );
    }
    assert_eq!(r3.components[&web].instance, 2);
    assert_eq!(r3.hosts, r.hosts);
    assert_eq!(r3.history.len(), 3);
    assert_eq!(r3.history[2].outcome, Outcome::RolledBack);
    assert!(r3.history[2].bumped.is_empty());
    assert!(!tower
        .root("shop-1")
        .join("srv/services/auto-shop-prod-web/3")
        .exists());

    // A revision that does not exist: the first host's migrations check
    // cannot fetch it, says why, and nothing else is sent; v2 keeps serving.
    let text = std::fs::read_to_string(file("v2"))?.replace("revision: v2", "revision: v9");
    std::fs::write(file("v9"), text)?;
    let (r9, done) = deploy(&tower, &file("v9"))?;
    assert_eq!(done.len(), 1, "{done:#?}");
    assert!(
        matches!(done[0].state, ChangeState::RolledBack { .. }),
        "{done:#?}"
    );
    let stderr = step_stderr(&done[0], "check for pending migrations (v9)")?;
    assert!(stderr.contains("v9"), "the fetch says why: {stderr}");
    assert_eq!(r9.hosts, r.hosts);
    assert!(!tower
        .root("shop-1")
        .join("srv/services/auto-shop-prod-web/probe/src")
        .exists());

    // nginx refuses the generated configuration (a path it cannot parse),
    // both hosts at once: `nginx -t` fails before any reload, each change
    // rolls back, nothing of the new instance is left, v2 keeps serving.
    let text = std::fs::read_to_string(file("v2"))?
        .replace("    replicas: 2\n", "    replicas: 2\n    path: /a;b\n");
    std::fs::write(file("badpath"), text)?;
    let loads = start_loads(&r, &hosts)?;
    let (rb, done) = deploy_with(&tower, &file("badpath"), &["--parallel", "2"])?;
    assert_eq!(done.len(), 2, "--parallel 2 sends both hosts their change");
    for change in &done {
        assert!(
            matches!(change.state, ChangeState::RolledBack { .. }),
            "{change:#?}"
        );
        let stderr = step_stderr(change, "switch the proxy to web #3")?;
        assert!(
            stderr.contains("nginx refused the configuration"),
            "{}: {stderr}",
            change.host
        );
    }
    for ((host, _), load) in hosts.iter().zip(loads) {
        let report = load.stop();
        assert!(report.failures.is_empty(), "{host}: {:?}", report.failures);
        assert!(
            report.answers.iter().all(|a| a.starts_with("shop v2")),
            "{host}: {:?}",
            report.answers
        );
    }
    assert_eq!(rb.hosts, r.hosts);
    for (host, _) in hosts {
        let services = tower.root(host).join("srv/services");
        assert!(!services.join("auto-shop-prod-web/3").exists(), "{host}");
        let site = std::fs::read_to_string(services.join("auto-proxy/sites/auto-shop-prod.conf"))?;
        assert!(!site.contains("/a;b"), "{host}: {site}");
    }

    let listed = tower.cli(&["deployments", "list"])?;
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("shop/prod") && listed.contains("code:web#2"),
        "{listed}"
    );

    // A crashed replica is restarted by its supervisor: SIGKILL the app of
    // shop-1's replica 1, and a check change (the plug waits, not the test)
    // finds it answering again, as a new process.
    let pid_file = tower
        .root("shop-1")
        .join("srv/services/auto-shop-prod-web/2/replica-1/app.pid");
    let old_pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(old_pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let port =
        r.hosts["shop-1"].services[&Part::parse("web").map_err(anyhow::Error::msg)?].ports[0];
    let check = vigie_changes::parse_change(
        "check.yml",
        &format!("title: shop answers\nsteps:\n  - check:\n      http: http://127.0.0.2:{port}/\n    retries: 100\n    interval: 100ms\n"),
    )?;
    let submitted = tower.api()?.changes(ApiCall::Submit {
        spec: check,
        target: "shop-1".into(),
    })?;
    let ids: Vec<String> = submitted.iter().map(|c| c.id.clone()).collect();
    let checked = tower.wait_final(&ids, LONG)?;
    assert_eq!(checked[0].state, ChangeState::Succeeded, "{checked:#?}");
    let new_pid: i32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    assert_ne!(new_pid, old_pid, "the app was restarted");

    // v4-bad's migration fails half-way: the first host's upgrade rolls
    // back (its transaction too), both hosts go back to v2 and leave
    // maintenance; clients saw v2 and the maintenance page, no failure.
    let loads = start_loads(&r, &hosts)?;
    let (rbad, done, said) = deploy_said(&tower, &file("v4-bad"), &[])?;
    // Issue 19: the SQL error is said live, in the rollout's lines, before
    // the deploy's end; not psql's lone caret.
    let error = said
        .lines()
        .position(|l| {
            l.starts_with("shop-1:   ")
                && l.contains(
                    "ERROR:  column \"missing_column\" of relation \"notes\" does not exist",
                )
        })
        .with_context(|| format!("no SQL error among the rollout's lines:\n{said}"))?;
    let failed_step = said.lines().position(|l| {
        l.starts_with("shop-1: step ") && l.contains("(run the pending migrations) failed")
    });
    let end = said.lines().position(|l| l.ends_with(": rolled back"));
    assert!(failed_step < Some(error) && Some(error) < end, "{said}");
    assert!(said.lines().all(|l| !l.ends_with("^")), "{said}");
    let by_host = |h: &str| {
        done.iter()
            .find(|c| c.host == h)
            .context("a change per host")
    };
    let upgrade = by_host("shop-1")?;
    assert!(
        matches!(upgrade.state, ChangeState::RolledBack { .. }),
        "{upgrade:#?}"
    );
    let failed = upgrade
        .steps
        .iter()
        .find(|s| s.name == "run the pending migrations")
        .and_then(|s| s.result.as_ref())
        .context("the migration step ran")?;
    assert!(failed.stderr_tail.contains("missing_column"), "{failed:#?}");
    assert_eq!(
        by_host("shop-2")?.state,
        ChangeState::Succeeded,
        "shop-2 left maintenance"
    );
    for ((host, _), load) in hosts.iter().zip(loads) {
        let report = load.stop();
        assert!(report.failures.is_empty(), "{host}: {:?}", report.failures);
        assert!(report.maintenance > 0, "{host}: {report:?}");
        assert!(
            report
                .answers
                .last()
                .is_some_and(|a| a.starts_with("shop v2")),
            "{host}: back to v2: {:?}",
            report.answers.last()
        );
    }
    assert_eq!(
        pg.query(
            "auto-shop-prod-main",
            "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'"
        )?,
        "0",
        "the failed migration's transaction was rolled back"
    );
    assert_eq!(rbad.components[&web].instance, 2);
    assert_eq!(rbad.hosts, r.hosts);
    assert!(rbad
        .history
        .last()
        .is_some_and(|d| d.maintenance && d.outcome == Outcome::RolledBack));
    assert!(!tower
        .root("shop-1")
        .join("srv/services/auto-shop-prod-web/3")
        .exists());

    // v4 has a pending migration: under load each host answers v2, then
    // the maintenance page (503 with Retry-After, never a failure), then
    // v4, which shows the row its migration wrote. The migration ran once.
    let loads = start_loads(&r, &hosts)?;
    let planned = tower.cli(&["deploy", "--plan", &file("v4").display().to_string()])?;
    let text = String::from_utf8_lossy(&planned.stdout);
    assert!(text.contains("database:main: instance 1 → 2"), "{text}");
    assert!(!text.contains("cache:"), "{text}");
    let (r4, done) = deploy(&tower, &file("v4"))?;
    assert_eq!(done.len(), 2, "{done:#?}");
    assert!(
        done.iter().all(|c| c.state == ChangeState::Succeeded),
        "{done:#?}"
    );
    for ((host, _), load) in hosts.iter().zip(loads) {
        let report = load.stop();
        eprintln!(
            "{host}: during the v4 deploy {} served, {} maintenance (503), {} failed",
            report.served,
            report.maintenance,
            report.failures.len()
        );
        assert!(report.failures.is_empty(), "{host}: {:?}", report.failures);
        assert!(report.maintenance > 0, "{host}: {report:?}");
        let a = &report.answers;
        let kind = |x: &str| {
            if x == MAINTENANCE {
                "maintenance"
            } else if x.starts_with("shop v2") {
                "v2"
            } else if x.starts_with("shop v4") {
                "v4"
            } else {
                "other"
            }
        };
        let first = |k: &str| a.iter().position(|x| kind(x) == k);
        let last = |k: &str| a.iter().rposition(|x| kind(x) == k);
        // v2, then the maintenance page, then v4. A graceful reload lets
        // nginx's old workers answer while the new ones start, so the pages
        // of a switch may alternate until the switch step returns (it waits
        // for the old workers to be gone): what a request sent after a
        // change ended got is checked, not how long the overlap lasted.
        let (Some(_), Some(v2), Some(v4)) = (first("maintenance"), last("v2"), first("v4")) else {
            panic!("{host}: v2, maintenance and v4 all seen: {a:?}");
        };
        assert!(first("other").is_none(), "{host}: {a:?}");
        assert_eq!(kind(&a[0]), "v2", "{host}");
        assert_eq!(kind(&a[a.len() - 1]), "v4", "{host}");
        assert!(v2 < v4, "{host}: no v2 once v4 served: {a:?}");
        let upgrade = done
            .iter()
            .find(|c| c.host == *host)
            .context("an upgrade per host")?;
        let ends = change_ends(&tower, host)?;
        let at = ends
            .iter()
            .position(|(id, _)| *id == upgrade.id)
            .context("the upgrade's end event")?;
        let entered = at
            .checked_sub(1)
            .map(|i| ends[i].1)
            .context("the enter's end")?;
        let upgraded = ends[at].1;
        let after = |t: std::time::SystemTime| {
            report
                .sent
                .iter()
                .filter(move |(sent, _)| *sent > t)
                .map(|(_, i)| kind(&a[*i]))
        };
        let after_enter: Vec<&str> = after(entered).collect();
        assert!(
            !after_enter.is_empty() && after_enter.iter().all(|k| *k != "v2"),
            "{host}: nothing but maintenance or v4 once in maintenance: {after_enter:?}"
        );
        assert!(
            after(upgraded).all(|k| k == "v4"),
            "{host}: nothing but v4 once upgraded: {:?}",
            after(upgraded).collect::<Vec<_>>()
        );
        assert!(
            a.last()
                .is_some_and(|x| x.ends_with("note: hello from the v4 migration")),
            "{host}: {a:?}"
        );
    }
    assert_eq!(
        pg.query("auto-shop-prod-main", "SELECT count(*) FROM notes")?,
        "1",
        "the migration ran exactly once"
    );
    assert_eq!(migrations_run(&pg)?, "2");
    let db = Component::Database(Part::parse("main").map_err(anyhow::Error::msg)?);
    assert_eq!(r4.components[&web].instance, 3);
    assert_eq!(r4.components[&db].instance, 2);
    assert_eq!(r4.components[&Component::Cache].instance, 1);
    assert!(r4.history.last().is_some_and(|d| d.maintenance));
    // Old instances are pruned: the one serving (3) and the one it
    // replaced (2) stay.
    for (host, _) in hosts {
        let dir = tower.root(host).join("srv/services/auto-shop-prod-web");
        assert!(dir.join("3").exists() && dir.join("2").exists(), "{host}");
        assert!(!dir.join("1").exists(), "{host}: instance 1 was not pruned");
        let staged = std::fs::read_dir(tower.root(host).join("srv/services/auto-proxy/staged"))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect::<Vec<_>>();
        assert!(
            staged.is_empty(),
            "{host}: staged configs pile up: {staged:?}"
        );
    }
    // The instances counted themselves in the cache, under their prefix.
    let keys = redis.keys()?;
    assert!(
        keys.contains(&"auto-shop-prod:starts".to_string()),
        "{keys:?}"
    );
    assert!(
        keys.iter().all(|k| k.starts_with("auto-shop-prod:")),
        "{keys:?}"
    );

    // A change of the cache's spec alone bumps the cache alone (seed 001's
    // deploy 4): nothing to do on the hosts.
    let text = std::fs::read_to_string(file("v4"))?
        .replace("  engine: redis\n", "  engine: redis\n  version: \"2\"\n");
    std::fs::write(file("v5"), text)?;
    let (r5, done) = deploy(&tower, &file("v5"))?;
    assert!(done.is_empty(), "{done:#?}");
    assert_eq!(r5.components[&Component::Cache].instance, 2);
    assert_eq!(r5.components[&web].instance, 3);
    assert_eq!(r5.components[&db].instance, 2);
    assert_eq!(
        r5.history.last().map(|d| d.bumped.clone()),
        Some(vec![(Component::Cache, 2)])
    );
    let r = r5;

    // The CLI's JSON contract: `show` with the history, `list` without.
    let shown = tower.cli(&["deployments", "show", "shop/prod", "--json"])?;
    assert!(shown.status.success());
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout)?;
    assert_eq!(v["name"], "shop/prod");
    let components = v["components"].as_array().context("components")?;
    for (component, instance) in [("code:web", 3), ("database:main", 2), ("cache", 2)] {
        assert!(
            components
                .iter()
                .any(|c| c["component"] == component && c["instance"] == instance),
            "{component}#{instance}: {v}"
        );
    }
    assert_eq!(v["hosts"][0]["host"], "shop-1");
    assert_eq!(v["hosts"][0]["services"][0]["instance"], 3);
    let history = v["history"].as_array().context("history")?;
    assert_eq!(history.len(), v["deploys"].as_u64().unwrap_or(0) as usize);
    let v4 = &history[history.len() - 2];
    assert_eq!(v4["outcome"], "succeeded");
    assert_eq!(v4["maintenance"], true);
    assert_eq!(history[2]["outcome"], "rolled_back");
    let listed = tower.cli(&["deployments", "list", "--json"])?;
    let line: serde_json::Value = serde_json::from_slice(&listed.stdout)?;
    assert_eq!(line["name"], "shop/prod");
    assert!(line["history"].is_null(), "{line}");

    // v6-unhealthy's migration (003) commits on shop-1, then its new
    // replicas never get healthy and the upgrade rolls back. The old code
    // must not serve the migrated schema: both hosts stay in maintenance
    // (503 with Retry-After), the record says so, and a plain deploy is
    // refused until a fixed version goes `--from-maintenance`.
    let (r6bad, done) = deploy(&tower, &file("v6-unhealthy"))?;
    let upgrade = done
        .iter()
        .find(|c| c.host == "shop-1")
        .context("shop-1's upgrade")?;
    assert!(
        matches!(upgrade.state, ChangeState::RolledBack { .. }),
        "{upgrade:#?}"
    );
    let migrated = upgrade
        .steps
        .iter()
        .find(|s| s.name == vigie_deployer::MIGRATE_STEP)
        .and_then(|s| s.result.as_ref())
        .context("the migration step ran")?;
    assert!(migrated.ok, "{migrated:#?}");
    assert_eq!(r6bad.in_maintenance(), ["shop-1", "shop-2"]);
    let shown = tower.cli(&["deployments", "show", "shop/prod", "--json"])?;
    let v: serde_json::Value = serde_json::from_slice(&shown.stdout)?;
    let listed = v["hosts"].as_array().context("hosts")?;
    assert!(
        listed.iter().all(|h| h["maintenance"] == true),
        "scripts see the hosts left in maintenance: {v}"
    );
    assert!(r6bad
        .history
        .last()
        .is_some_and(|d| d.maintenance && d.outcome == Outcome::InMaintenance));
    assert_eq!(r6bad.components[&web].instance, 3);
    every_host_in_maintenance(&r, &hosts)?;
    assert_eq!(migrations_run(&pg)?, "3");
    let refused = tower.cli(&["deploy", &file("v6").display().to_string()])?;
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("shop-1, shop-2") && err.contains("--from-maintenance"),
        "{err}"
    );
    assert_eq!(
        record(&tower, "shop", "prod")?,
        r6bad,
        "a refused deploy records nothing"
    );
    let (r6, done) = deploy_with(&tower, &file("v6"), &["--from-maintenance"])?;
    assert!(
        done.iter().all(|c| c.state == ChangeState::Succeeded),
        "{done:#?}"
    );
    assert!(r6.in_maintenance().is_empty(), "{r6:?}");
    assert_eq!(r6.components[&web].instance, 4);
    every_host_answers(&r, &hosts, "shop v6 instance 4")?;
    assert_eq!(migrations_run(&pg)?, "3", "the migration ran once");

    // A maintenance deploy whose CLI is SIGKILLed while the hosts enter
    // maintenance (v7's migration pending) goes on in the tower: the
    // deploy daemon runs it to its end, and `deployments watch` follows
    // it there and exits with its outcome.
    let before = record(&tower, "shop", "prod")?;
    let started = tower
        .events()
        .snapshot()
        .iter()
        .filter(|e| e.name == "step_succeeded" && e.str("host") == Some("shop-2"))
        .count();
    // The kit's `cli` waits for the end; this one is killed: same binary,
    // same config (the XDG dir beside the tower's data dir).
    let mut cli = Command::new(vigie_tests::vigie_bin())
        .args(["deploy", &file("v7").display().to_string()])
        .env(
            "XDG_CONFIG_HOME",
            tower
                .data_dir()
                .parent()
                .context("the tower's dir")?
                .join("xdg"),
        )
        .env_remove("VIGIE_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tower
        .events()
        .wait_n("a step of shop-2's enter", started + 1, LONG, |e| {
            e.name == "step_succeeded" && e.str("host") == Some("shop-2")
        })?;
    cli.kill()?;
    cli.wait()?;
    let watched = tower.cli(&["deployments", "watch", "shop/prod"])?;
    let text = String::from_utf8_lossy(&watched.stdout);
    assert!(watched.status.success(), "{text}");
    let number = before.history.len() + 1;
    assert!(text.contains(&format!("#{number}: succeeded")), "{text}");
    let r7 = record(&tower, "shop", "prod")?;
    assert!(r7.in_maintenance().is_empty(), "{r7:?}");
    assert_eq!(r7.history.len(), before.history.len() + 1);
    assert!(r7
        .history
        .last()
        .is_some_and(|d| d.maintenance && d.outcome == Outcome::Succeeded));
    every_host_answers(&r, &hosts, "shop v7 instance 5")?;
    assert_eq!(migrations_run(&pg)?, "4");

    // Deployed services outlive the tower: the launcher SIGKILLed and
    // every daemon and plug gone with it, each host's nginx still serves v4.
    let children = tower.all_child_pids();
    tower.kill()?;
    vigie_tests::wait_not_running(&children, LONG)?;
    every_host_answers(&r, &hosts, "shop v7 instance 5")?;
    Ok(())
}

/// BENCHMARKS.md's rolling-update figures: one host, two replicas, load
/// through nginx, a rolling update per setting of the health check's
/// interval and the drain; prints one table row per setting. Run with
/// `cargo test -p vigie-tests --test deploy_e2e -- --ignored --nocapture`.
#[test]
#[ignore = "a benchmark: prints BENCHMARKS.md's rolling-update table"]
fn rolling_update_costs() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    shop_repo(work.path(), &[])?;
    let setup = Setup::new("bench").host("bench-1", &[("role", "web"), ("address", "127.0.0.4")]);
    let tower = Launcher::start(setup)?;
    let _leftovers = Leftovers(vec![tower.root("bench-1")]);
    let addr = Ipv4Addr::new(127, 0, 0, 4);
    // The shop without database, cache or migrations: the rollout alone.
    let env_text = |rev: &str, interval: &str, drain: &str| -> anyhow::Result<String> {
        let text = std::fs::read_to_string(work.path().join(format!("environment-{rev}.yml")))?;
        let text = &text[..text.find("databases:").context("databases")?];
        Ok(text
            .replace("ports: 27100-27199", "ports: 27200-27299")
            .replace("interval: 100ms", &format!("interval: {interval}"))
            .replace("drain: 300ms", &format!("drain: {drain}")))
    };
    let file = work.path().join("bench.yml");
    std::fs::write(&file, env_text("v1", "100ms", "300ms")?)?;
    let (mut r, _) = deploy_env(&tower, &file)?;
    println!("| health interval | drain | rollout (ms) | in health checks | in drain+stop | in fetch+install | outside steps | served | failed | 503 |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut rev = "v1";
    for (interval, drain) in [
        ("100ms", "50ms"),
        ("100ms", "300ms"),
        ("100ms", "1s"),
        ("500ms", "300ms"),
        ("1s", "300ms"),
    ] {
        rev = if rev == "v1" { "v2" } else { "v1" };
        std::fs::write(&file, env_text(rev, interval, drain)?)?;
        let load = LoadLoop::start(proxy(&r, "bench-1", addr)?, LONG);
        let (next, done) = deploy_env(&tower, &file)?;
        let report = load.stop();
        let change = done.first().context("one change")?;
        anyhow::ensure!(change.state == ChangeState::Succeeded, "{change:#?}");
        let by = |kinds: &[&str]| -> u64 {
            change
                .steps
                .iter()
                .filter(|s| kinds.contains(&s.name.split_whitespace().next().unwrap_or_default()))
                .map(|s| s.result.as_ref().map_or(0, |r| r.duration_ms))
                .sum()
        };
        let total = change.updated_ms.saturating_sub(change.submitted_ms);
        let steps: u64 = change
            .steps
            .iter()
            .map(|s| s.result.as_ref().map_or(0, |r| r.duration_ms))
            .sum();
        println!(
            "| {interval} | {drain} | {total} | {} | {} | {} | {} | {} | {} | {} |",
            by(&["health"]),
            by(&["stop"]),
            by(&["fetch", "install"]),
            total.saturating_sub(steps),
            report.served,
            report.failures.len(),
            report.maintenance
        );
        anyhow::ensure!(report.failures.is_empty(), "{:?}", report.failures);
        r = next;
    }
    Ok(())
}

/// Deploys `file` (any environment) and returns its record and changes.
fn deploy_env(tower: &Launcher, file: &Path) -> anyhow::Result<(EnvRecord, Vec<ChangeView>)> {
    let out = tower.cli(&["deploy", &file.display().to_string()])?;
    anyhow::ensure!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(file)?;
    let (app, env) = (
        "shop",
        if text.contains("environment: prod") {
            "prod"
        } else {
            "?"
        },
    );
    let record = match tower.api()?.call(ApiCall::Deploy(DeployCall::List))? {
        ApiAnswer::Deploy(DeployAnswer::Deployments(all)) => {
            let found = all
                .iter()
                .find(|d| d.app == app && d.environment == env)
                .context("in the inventory")?;
            EnvRecord::from_json(&found.record)?
        }
        other => anyhow::bail!("unexpected answer: {other:?}"),
    };
    let ids: Vec<String> = record
        .history
        .last()
        .map(|d| d.changes.values().cloned().collect())
        .unwrap_or_default();
    let views = tower.wait_final(&ids, LONG)?;
    Ok((record, views))
}
