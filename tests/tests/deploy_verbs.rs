//! Issue 19, the verbs on a deployed environment, run by the tower
//! (`vigie deployments restart|rollback|maintenance|stop|start|clean|
//! undeploy shop/prod`): the shop (examples/shop: real git, real nginx per
//! host, a real PostgreSQL and Redis of the test's own) on two local
//! hosts. Under HTTP load, a restart and a rollback lose no request;
//! maintenance by hand answers 503 with `Retry-After` and the
//! environment's own page; `clean` removes planted orphans and nothing
//! the inventory owns; an operator without the grant over every host is
//! refused, audited; `undeploy` leaves no process, no site, no directory,
//! and the database with its rows (PostgreSQL asked) — dropped, with its
//! role, only by `--drop-data` and the name typed again (a wrong name,
//! from the CLI or straight to the tower, is refused, nothing removed).

use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use vigie_deployer::{EnvRecord, Part};
use vigie_tests::deploys::{record, shop_repo, Leftovers};
use vigie_tests::front::{add_operator, admin, client_with, fault, grants};
use vigie_tests::http_load::{request, LoadLoop};
use vigie_tests::servers::{Postgres, Redis};
use vigie_tests::{Launcher, Setup};
use vigie_wire::deploy::{DeployCall, EnvVerb};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind};

const LONG: Duration = Duration::from_secs(120);
const HOSTS: [(&str, Ipv4Addr); 2] = [
    ("verbs-1", Ipv4Addr::new(127, 0, 0, 16)),
    ("verbs-2", Ipv4Addr::new(127, 0, 0, 17)),
];
const PAGE: &str = "<h1>The shop is closed for a moment</h1>";

struct Shop {
    tower: Launcher,
    pg: Postgres,
    _redis: Redis,
    work: tempfile::TempDir,
}

impl Shop {
    fn start() -> anyhow::Result<Shop> {
        let work = tempfile::tempdir()?;
        let pg = Postgres::start()?;
        let redis = Redis::start()?;
        let (admin, cache) = (pg.admin_url(), redis.url());
        shop_repo(
            work.path(),
            &[("PG_ADMIN_URL", &admin), ("REDIS_URL", &cache)],
        )?;
        let setup = Setup::new("verbs")
            .host("verbs-1", &[("role", "web"), ("address", "127.0.0.16")])
            .host("verbs-2", &[("role", "web"), ("address", "127.0.0.17")]);
        Ok(Shop {
            tower: Launcher::start(setup)?,
            pg,
            _redis: redis,
            work,
        })
    }

    /// The environment file of version `v`, with a maintenance page.
    fn file(&self, v: &str) -> anyhow::Result<PathBuf> {
        let made = self.work.path().join(format!("environment-{v}.yml"));
        let text = std::fs::read_to_string(&made)?;
        let path = self.work.path().join(format!("paged-{v}.yml"));
        std::fs::write(&path, format!("{text}maintenance_page: \"{PAGE}\"\n"))?;
        Ok(path)
    }

    /// `vigie ARGS`, which must succeed; what it printed.
    fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = self.tower.cli(args)?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        anyhow::ensure!(
            out.status.success(),
            "vigie {args:?}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(text)
    }

    fn check(&self) -> anyhow::Result<()> {
        let text = self.ok(&["deployments", "check", "shop/prod"])?;
        assert_eq!(text.matches("as the inventory says").count(), 2, "{text}");
        Ok(())
    }

    fn root(&self, host: &str) -> PathBuf {
        self.tower.root(host)
    }
}

fn proxy(record: &EnvRecord, host: &str, addr: Ipv4Addr) -> anyhow::Result<SocketAddr> {
    let port = record
        .hosts
        .get(host)
        .and_then(|h| h.proxy_port)
        .context("a proxy port")?;
    Ok(SocketAddr::from((addr, port)))
}

fn loads(record: &EnvRecord) -> anyhow::Result<Vec<LoadLoop>> {
    HOSTS
        .iter()
        .map(|(host, addr)| Ok(LoadLoop::start(proxy(record, host, *addr)?, LONG)))
        .collect()
}

/// Not one request failed; the last answer starts with `last`.
fn no_failure(loads: Vec<LoadLoop>, last: &str) {
    for ((host, _), load) in HOSTS.iter().zip(loads) {
        let report = load.stop();
        eprintln!(
            "{host}: {} served, {} failed",
            report.served,
            report.failures.len()
        );
        assert!(report.served > 0, "{host}: nothing served");
        assert!(
            report.failures.is_empty(),
            "{host}: {} failed: {:?}",
            report.failures.len(),
            report.failures
        );
        assert!(
            report.answers.last().is_some_and(|a| a.starts_with(last)),
            "{host}: {:?}",
            report.answers
        );
    }
}

fn web() -> anyhow::Result<Part> {
    Part::parse("web").map_err(anyhow::Error::msg)
}

#[test]
fn the_verbs_run_by_the_tower_keep_serving_and_leave_nothing_behind() -> anyhow::Result<()> {
    let shop = Shop::start()?;
    let tower = &shop.tower;
    let _leftovers = Leftovers(HOSTS.iter().map(|(h, _)| tower.root(h)).collect());
    shop.ok(&["deploy", &shop.file("v1")?.display().to_string()])?;
    shop.ok(&["deploy", &shop.file("v2")?.display().to_string()])?;
    let r2 = record(tower, "shop", "prod")?;
    assert_eq!(r2.hosts["verbs-1"].services[&web()?].instance, 2);

    restart_and_rollback_lose_nothing(&shop, &r2)?;
    maintenance_by_hand(&shop)?;
    stop_and_start(&shop)?;
    clean_removes_only_orphans(&shop)?;
    refused_without_the_grant(&shop)?;
    undeploy_leaves_nothing(&shop)?;
    Ok(())
}

fn restart_and_rollback_lose_nothing(shop: &Shop, r2: &EnvRecord) -> anyhow::Result<()> {
    let tower = &shop.tower;
    let running = loads(r2)?;
    let said = shop.ok(&["deployments", "restart", "shop/prod"])?;
    assert!(said.contains("restart shop/prod: succeeded"), "{said}");
    no_failure(running, "shop v2");
    shop.check()?;

    let running = loads(r2)?;
    let said = shop.ok(&["deployments", "rollback", "shop/prod"])?;
    assert!(said.contains("rollback shop/prod: succeeded"), "{said}");
    no_failure(running, "shop v1");
    let r = record(tower, "shop", "prod")?;
    for (host, _) in HOSTS {
        let placed = &r.hosts[host].services[&web()?];
        assert_eq!(placed.instance, 1, "{host} runs the previous instance");
        assert_ne!(
            placed.ports,
            r2.hosts[host].services[&web()?].ports,
            "fresh ports"
        );
    }
    assert_eq!(
        r.history.last().and_then(|d| d.verb.as_deref()),
        Some("rollback")
    );
    let shown = shop.ok(&["deployments", "show", "shop/prod"])?;
    assert!(shown.contains("by admin rollback succeeded"), "{shown}");
    assert!(shown.contains("by admin restart succeeded"), "{shown}");
    shop.check()?;
    Ok(())
}

fn maintenance_by_hand(shop: &Shop) -> anyhow::Result<()> {
    let r = record(&shop.tower, "shop", "prod")?;
    shop.ok(&["deployments", "maintenance", "shop/prod", "on"])?;
    for (host, addr) in HOSTS {
        let answer = request(proxy(&r, host, addr)?, "/", Duration::from_secs(5))
            .map_err(anyhow::Error::msg)?;
        assert_eq!(answer.status, 503, "{host}");
        assert_eq!(answer.header("retry-after"), Some("30"), "{host}");
        assert!(answer.body.contains(PAGE), "{host}: {}", answer.body);
    }
    shop.check()?;
    shop.ok(&["deployments", "maintenance", "shop/prod", "off"])?;
    for (host, addr) in HOSTS {
        let answer = request(proxy(&r, host, addr)?, "/", Duration::from_secs(5))
            .map_err(anyhow::Error::msg)?;
        assert_eq!(answer.status, 200, "{host}");
        assert!(answer.body.starts_with("shop v1"), "{}", answer.body);
    }
    Ok(())
}

fn stop_and_start(shop: &Shop) -> anyhow::Result<()> {
    let r = record(&shop.tower, "shop", "prod")?;
    shop.ok(&["deployments", "stop", "shop/prod", "--service", "web"])?;
    let (host, addr) = HOSTS[0];
    let answer = request(proxy(&r, host, addr)?, "/", Duration::from_secs(5));
    assert!(
        answer.as_ref().map_or(true, |a| a.status == 502),
        "a stopped service does not answer"
    );
    // The inventory knows it is stopped: check does not call it missing.
    shop.check()?;
    let stopped = record(&shop.tower, "shop", "prod")?;
    assert!(stopped.hosts[host].stopped.contains(&web()?));
    shop.ok(&["deployments", "start", "shop/prod", "--service", "web"])?;
    let answer =
        request(proxy(&r, host, addr)?, "/", Duration::from_secs(5)).map_err(anyhow::Error::msg)?;
    assert_eq!(answer.status, 200);
    shop.check()?;
    Ok(())
}

fn clean_removes_only_orphans(shop: &Shop) -> anyhow::Result<()> {
    let root = shop.root("verbs-2");
    let stray_instance = root.join("srv/services/auto-shop-prod-web/99");
    let stray_service = root.join("srv/services/auto-shop-prod-old/1");
    for dir in [&stray_instance, &stray_service] {
        std::fs::create_dir_all(dir.join("src"))?;
    }
    let listed = shop.ok(&["deployments", "clean", "shop/prod", "--dry-run"])?;
    assert!(
        listed.contains("verbs-2: would remove auto-shop-prod-web/99"),
        "{listed}"
    );
    assert!(
        listed.contains("verbs-2: would remove auto-shop-prod-old"),
        "{listed}"
    );
    assert!(
        stray_instance.exists() && stray_service.exists(),
        "a dry run removes nothing"
    );
    let r = record(&shop.tower, "shop", "prod")?;
    let running = loads(&r)?;
    let said = shop.ok(&["deployments", "clean", "shop/prod"])?;
    no_failure(running, "shop v1");
    assert!(
        said.contains("verbs-2: removed auto-shop-prod-web/99"),
        "{said}"
    );
    assert!(!stray_instance.exists(), "{said}");
    assert!(
        !root.join("srv/services/auto-shop-prod-old").exists(),
        "{said}"
    );
    for (host, _) in HOSTS {
        let owned = shop
            .root(host)
            .join("srv/services/auto-shop-prod-web/1/src");
        assert!(owned.exists(), "{host}: the running instance is kept");
    }
    shop.check()?;
    Ok(())
}

fn refused_without_the_grant(shop: &Shop) -> anyhow::Result<()> {
    let tower = &shop.tower;
    let dir = tower.dir.path().to_path_buf();
    let narrow = add_operator(
        tower,
        &dir,
        "default",
        "narrow",
        &grants(&["changes.submit@verbs-1", "changes.read"])?,
    )?;
    let before = record(tower, "shop", "prod")?;
    let mut c = client_with(tower, &narrow, None)?;
    let call = ApiCall::Deploy(DeployCall::Verb {
        app: "shop".into(),
        environment: "prod".into(),
        verb: EnvVerb::Undeploy { drop_data: None },
        force_unlock: false,
    });
    assert_eq!(fault(c.call(call)), Some(ApiFaultKind::Forbidden));
    assert_eq!(record(tower, "shop", "prod")?, before, "nothing changed");
    let ApiAnswer::Audit(audit) = admin(tower, None)?.call(ApiCall::Audit {
        host: None,
        change: None,
        limit: 1000,
        filter: Default::default(),
    })?
    else {
        anyhow::bail!("audit answer")
    };
    assert!(
        audit.iter().any(|a| a.action == "deploy_verb"
            && a.operator == "narrow"
            && a.summary.contains("refused")),
        "{audit:?}"
    );
    assert!(audit
        .iter()
        .any(|a| a.action == "deploy_verb" && a.summary.contains("rollback")));
    Ok(())
}

/// Every pid in the deployer's pid files under `root`.
fn pids(root: &Path) -> anyhow::Result<Vec<i32>> {
    let mut out = Vec::new();
    let web = root.join("srv/services/auto-shop-prod-web");
    for instance in std::fs::read_dir(&web)? {
        let instance = instance?.path();
        for r in 1..=2 {
            for file in ["supervisor.pid", "app.pid"] {
                let path = instance.join(format!("replica-{r}/{file}"));
                if let Ok(text) = std::fs::read_to_string(&path) {
                    out.push(text.trim().parse()?);
                }
            }
        }
    }
    Ok(out)
}

/// Alive, and not a zombie.
fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(") ").next().is_some_and(|r| !r.starts_with('Z')))
}

/// `vigie deployments undeploy shop/prod`, with `--drop-data` and
/// `typed` on stdin when given.
fn undeploy(shop: &Shop, typed: Option<&str>) -> anyhow::Result<std::process::Output> {
    let tower = &shop.tower;
    let xdg = tower
        .data_dir()
        .parent()
        .context("the tower's dir")?
        .join("xdg");
    let mut args = vec!["deployments", "undeploy", "shop/prod"];
    if typed.is_some() {
        args.push("--drop-data");
    }
    let mut child = Command::new(vigie_tests::vigie_bin())
        .args(args)
        .env("XDG_CONFIG_HOME", xdg)
        .env_remove("VIGIE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(format!("{}\n", typed.unwrap_or_default()).as_bytes())?;
    Ok(child.wait_with_output()?)
}

/// How many databases and roles PostgreSQL has named `auto-shop-prod-main`,
/// and the rows of its `items` (none when the database is gone).
fn data(shop: &Shop) -> anyhow::Result<(String, String, Option<String>)> {
    const NAME: &str = "auto-shop-prod-main";
    let dbs = shop.pg.query(
        "postgres",
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{NAME}'"),
    )?;
    let roles = shop.pg.query(
        "postgres",
        &format!("SELECT count(*) FROM pg_roles WHERE rolname = '{NAME}'"),
    )?;
    let rows = if dbs == "1" {
        Some(
            shop.pg
                .query(NAME, "SELECT string_agg(name, ',') FROM items")?,
        )
    } else {
        None
    };
    Ok((dbs, roles, rows))
}

fn succeeded(out: &std::process::Output) -> anyhow::Result<()> {
    anyhow::ensure!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `--drop-data` with a wrong name: refused by the CLI, and by the tower
/// for a caller that skips the CLI; nothing removed.
fn a_wrong_name_drops_nothing(
    shop: &Shop,
    kept: &(String, String, Option<String>),
) -> anyhow::Result<()> {
    let tower = &shop.tower;
    let r = record(tower, "shop", "prod")?;
    let wrong = undeploy(shop, Some("shop/staging"))?;
    assert!(!wrong.status.success(), "a wrong name is refused");
    let call = ApiCall::Deploy(DeployCall::Verb {
        app: "shop".into(),
        environment: "prod".into(),
        verb: EnvVerb::Undeploy {
            drop_data: Some("shop/staging".into()),
        },
        force_unlock: false,
    });
    assert_eq!(
        fault(admin(tower, None)?.call(call)),
        Some(ApiFaultKind::Invalid)
    );
    assert_eq!(record(tower, "shop", "prod")?, r, "nothing was touched");
    assert_eq!(&data(shop)?, kept, "the data is all there");
    Ok(())
}

fn undeploy_leaves_nothing(shop: &Shop) -> anyhow::Result<()> {
    let tower = &shop.tower;
    shop.pg.query(
        "auto-shop-prod-main",
        "INSERT INTO items (name) VALUES ('kept')",
    )?;
    let kept = data(shop)?;
    assert_eq!(kept, ("1".into(), "1".into(), Some("kept".into())));
    a_wrong_name_drops_nothing(shop, &kept)?;
    let r = record(tower, "shop", "prod")?;
    let mut running = Vec::new();
    for (host, _) in HOSTS {
        running.extend(pids(&shop.root(host))?);
    }
    assert!(running.len() >= 4, "{running:?}");
    // Without --drop-data: services, sites and directories go, the data stays.
    succeeded(&undeploy(shop, None)?)?;
    for pid in running {
        assert!(!alive(pid), "process {pid} still runs");
    }
    for (host, addr) in HOSTS {
        let root = shop.root(host);
        assert!(
            !root.join("srv/services/auto-shop-prod-web").exists(),
            "{host}"
        );
        assert!(
            !root
                .join("srv/services/auto-proxy/sites/auto-shop-prod.conf")
                .exists(),
            "{host}"
        );
        assert!(
            request(proxy(&r, host, addr)?, "/", Duration::from_secs(2)).is_err(),
            "{host}: nothing listens on the environment's proxy port"
        );
    }
    let after = record(tower, "shop", "prod")?;
    assert!(after.hosts.is_empty(), "{after:?}");
    assert_eq!(
        data(shop)?,
        kept,
        "undeploy keeps the database and its rows"
    );

    // Deployed again, it finds its data; --drop-data with the name typed
    // again drops the database and its role.
    shop.ok(&["deploy", &shop.file("v1")?.display().to_string()])?;
    assert_eq!(data(shop)?, kept, "the same database, found again");
    succeeded(&undeploy(shop, Some("shop/prod"))?)?;
    assert_eq!(
        data(shop)?,
        ("0".into(), "0".into(), None),
        "--drop-data dropped the database and its role"
    );
    assert!(record(tower, "shop", "prod")?.hosts.is_empty());
    Ok(())
}
