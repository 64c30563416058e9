//! Issue 19: deploys run by the tower outlive whatever is killed. The
//! shop (examples/shop: real git, real nginx per host, a real PostgreSQL
//! and Redis of the test's own) is deployed to two local hosts under HTTP
//! load while the operator's CLI, the deploy daemon and the referee are
//! SIGKILLed at the phase boundaries the daemon records (`rollout_recorded`
//! events): each deploy ends by itself, not one request fails, no
//! instance that serves is deleted, no change is sent twice, and the
//! migrations run once. Two deploys of one environment at once: the
//! second is refused, naming who holds it.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use anyhow::Context;
use vigie_deployer::{EnvRecord, Outcome, Part};
use vigie_tests::deploys::{record, shop_repo, Leftovers};
use vigie_tests::http_load::LoadLoop;
use vigie_tests::servers::{Postgres, Redis};
use vigie_tests::{Launcher, Setup};
use vigie_wire::deploy::{DeployAnswer, DeployCall};
use vigie_wire::tower::{ApiAnswer, ApiCall};

const LONG: Duration = Duration::from_secs(120);
const HOSTS: [(&str, Ipv4Addr); 2] = [
    ("crash-1", Ipv4Addr::new(127, 0, 0, 12)),
    ("crash-2", Ipv4Addr::new(127, 0, 0, 13)),
];

/// `vigie deploy FILE` as the admin, left running (to be killed).
fn spawn_deploy(tower: &Launcher, file: &Path) -> anyhow::Result<Child> {
    spawn_deploy_to(tower, file, std::process::Stdio::null())
}

fn spawn_deploy_to(
    tower: &Launcher,
    file: &Path,
    stderr: std::process::Stdio,
) -> anyhow::Result<Child> {
    Ok(Command::new(vigie_tests::vigie_bin())
        .args(["deploy", &file.display().to_string()])
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
        .stderr(stderr)
        .spawn()?)
}

/// Waits until the deploy daemon recorded its `n`th entry into `phase`.
fn recorded(tower: &Launcher, phase: &str, n: usize) -> anyhow::Result<()> {
    tower
        .events()
        .wait_n(&format!("rollout_recorded {phase}"), n, LONG, |e| {
            e.name == "rollout_recorded" && e.str("phase") == Some(phase)
        })?;
    Ok(())
}

/// The changes deploy `number` sent `host`, as the referee has them.
fn changes_of(tower: &Launcher, number: u32, host: &str) -> anyhow::Result<usize> {
    let all = tower.api()?.changes(ApiCall::Status {
        change: None,
        limit: 1000,
    })?;
    let title = format!("deploy shop/prod #{number} on {host}");
    Ok(all
        .iter()
        .filter(|c| c.host == host && c.title.starts_with(&title))
        .count())
}

fn loads(record: &EnvRecord) -> anyhow::Result<Vec<LoadLoop>> {
    HOSTS
        .iter()
        .map(|(host, addr)| {
            let port = record
                .hosts
                .get(*host)
                .and_then(|h| h.proxy_port)
                .context("a proxy port")?;
            Ok(LoadLoop::start(SocketAddr::from((*addr, port)), LONG))
        })
        .collect()
}

/// Whether shop/prod's last rollout ended, as the referee has it.
fn ended(tower: &Launcher) -> anyhow::Result<bool> {
    let call = ApiCall::Deploy(DeployCall::Rollout {
        app: "shop".into(),
        environment: "prod".into(),
    });
    match tower.api()?.call(call)? {
        ApiAnswer::Deploy(DeployAnswer::Rollout(r)) => Ok(r.is_some_and(|r| r.end.is_some())),
        other => anyhow::bail!("unexpected answer: {other:?}"),
    }
}

/// Kills `child` (`deployd`, `referee`) once at every distinct step the
/// deploy daemon records (its phase and how many of its changes are
/// open), until the rollout ends; a resumed daemon records the step it
/// resumes at again, which is not killed twice, so the deploy moves on.
/// Returns the steps killed at.
fn kill_at_every_step(tower: &Launcher, child: &str) -> anyhow::Result<Vec<String>> {
    let marks = |e: &vigie_tests::Event| e.name == "rollout_recorded" || e.name == "rollout_ended";
    let mut n = tower
        .events()
        .snapshot()
        .iter()
        .filter(|e| marks(e))
        .count();
    let mut killed: Vec<String> = Vec::new();
    loop {
        n += 1;
        let e = tower
            .events()
            .wait_n("the next rollout step", n, LONG, marks)?;
        if e.name == "rollout_ended" {
            return Ok(killed);
        }
        let step = format!(
            "{} ({} open)",
            e.str("phase").unwrap_or("?"),
            e.u64("open").unwrap_or(0)
        );
        if !killed.contains(&step) {
            killed.push(step);
            tower.kill_child(child)?;
            // What a killed deploy daemon said after this step, before it
            // died, is not a step of the one now running (whose steps are
            // those after its start); it may even have recorded the end
            // without saying so.
            if child == "deployd" {
                let events = tower.events().snapshot();
                let restart = events
                    .iter()
                    .rposition(|e| e.name == "deployd_started")
                    .unwrap_or(0);
                n = events[..restart].iter().filter(|e| marks(e)).count();
            }
            if ended(tower)? {
                return Ok(killed);
            }
        }
    }
}

/// Not one request failed; the last answer starts with `last`.
fn no_failure(loads: Vec<LoadLoop>, last: &str) {
    for ((host, _), load) in HOSTS.iter().zip(loads) {
        let report = load.stop();
        eprintln!(
            "{host}: {} served, {} maintenance (503), {} failed",
            report.served,
            report.maintenance,
            report.failures.len()
        );
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

/// Follows the environment's deploy to its end (`deployments watch`).
fn watch(tower: &Launcher) -> anyhow::Result<String> {
    let out = tower.cli(&["deployments", "watch", "shop/prod"])?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    anyhow::ensure!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text)
}

/// Every instance the inventory says serves is on disk, its replicas'
/// supervisors alive.
fn serving_instances_exist(tower: &Launcher, record: &EnvRecord) -> anyhow::Result<()> {
    let web = Part::parse("web").map_err(anyhow::Error::msg)?;
    for (host, _) in HOSTS {
        let placed = &record.hosts[host].services[&web];
        let dir = tower.root(host).join(format!(
            "srv/services/auto-shop-prod-web/{}",
            placed.instance
        ));
        for r in 1..=placed.replicas {
            let pid = std::fs::read_to_string(dir.join(format!("replica-{r}/supervisor.pid")))
                .with_context(|| format!("{host}: {} replica {r}", dir.display()))?;
            let pid: i32 = pid.trim().parse()?;
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
                .with_context(|| format!("{host}: the supervisor of replica {r} is alive"))?;
        }
    }
    Ok(())
}

/// The tower, the two hosts' shop, its database, and its versions.
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
        // Killed at every step, a child must not be backed off for minutes.
        let setup = Setup::new("crash")
            .supervise("backoff_max", "400ms")
            .host("crash-1", &[("role", "web"), ("address", "127.0.0.12")])
            .host("crash-2", &[("role", "web"), ("address", "127.0.0.13")]);
        Ok(Shop {
            tower: Launcher::start(setup)?,
            pg,
            _redis: redis,
            work,
        })
    }

    fn file(&self, v: &str) -> PathBuf {
        self.work.path().join(format!("environment-{v}.yml"))
    }

    fn migrations(&self) -> anyhow::Result<String> {
        self.pg.query(
            "auto-shop-prod-main",
            "SELECT count(*) FROM shop_migrations",
        )
    }

    /// `deployments check`: its exit code and what it printed.
    fn check(&self) -> anyhow::Result<(Option<i32>, String)> {
        let out = self.tower.cli(&["deployments", "check", "shop/prod"])?;
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        Ok((out.status.code(), text))
    }
}

#[test]
fn deploys_go_on_through_kills_of_the_cli_the_deploy_daemon_and_the_referee() -> anyhow::Result<()>
{
    let shop = Shop::start()?;
    let tower = &shop.tower;
    let _leftovers = Leftovers(vec![tower.root("crash-1"), tower.root("crash-2")]);
    let first = tower.cli(&["deploy", &shop.file("v1").display().to_string()])?;
    anyhow::ensure!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stdout)
    );
    let r2 = rolling_update_through_kills(&shop, &record(tower, "shop", "prod")?)?;
    let r3 = two_deploys_at_once(&shop)?;
    let r4 = maintenance_deploy_through_kills(&shop, &r3)?;
    check_agrees_with_what_runs(&shop, &r4)?;
    every_step_of_two_deploys(&shop, &r4)?;
    assert!(r2.history.len() < r4.history.len());
    Ok(())
}

/// A rolling update (v2): the CLI killed once the migrations check is
/// recorded, the deploy daemon once the first wave is, the referee once
/// the second is.
fn rolling_update_through_kills(shop: &Shop, r1: &EnvRecord) -> anyhow::Result<EnvRecord> {
    let tower = &shop.tower;
    let running = loads(r1)?;
    let mut cli = spawn_deploy(tower, &shop.file("v2"))?;
    recorded(tower, "probe", 1)?;
    cli.kill()?;
    cli.wait()?;
    recorded(tower, "wave 1", 1)?;
    tower.kill_child("deployd")?;
    recorded(tower, "wave 2", 1)?;
    tower.kill_child("referee")?;
    let said = watch(tower)?;
    assert!(said.contains("#2: succeeded"), "{said}");
    assert_eq!(
        tower.events().count("rollout_resumed"),
        1,
        "the restarted daemon resumed the rollout from its record"
    );
    no_failure(running, "shop v2");
    let r2 = record(tower, "shop", "prod")?;
    assert_eq!(r2.history.len(), 2);
    assert_eq!(r2.history[1].outcome, Outcome::Succeeded);
    serving_instances_exist(tower, &r2)?;
    // One change per host, the first host's migrations check besides:
    // none was sent twice by a resumed daemon.
    assert_eq!(changes_of(tower, 2, "crash-1")?, 2);
    assert_eq!(changes_of(tower, 2, "crash-2")?, 1);
    Ok(r2)
}

/// Two deploys of one environment at once: the second is refused,
/// naming who holds it; Ctrl-C on the first stops its following, not
/// the deploy, and says how to follow again.
fn two_deploys_at_once(shop: &Shop) -> anyhow::Result<EnvRecord> {
    let tower = &shop.tower;
    let cli = spawn_deploy_to(tower, &shop.file("v1"), std::process::Stdio::piped())?;
    tower.events().wait_n("the third rollout", 3, LONG, |e| {
        e.name == "rollout_started"
    })?;
    let refused = tower.cli(&["deploy", &shop.file("v2").display().to_string()])?;
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(80), "{err}");
    assert!(
        err.contains("shop/prod is being deployed by admin since"),
        "{err}"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(cli.id())?),
        nix::sys::signal::Signal::SIGINT,
    )?;
    let out = cli.wait_with_output()?;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert!(
        err.contains("detached: the deploy of shop/prod goes on in the tower; follow it again with `vigie deployments watch shop/prod`"),
        "{err}"
    );
    let said = watch(tower)?;
    assert!(said.contains("#3: succeeded"), "{said}");
    let r3 = record(tower, "shop", "prod")?;
    assert_eq!(r3.history.len(), 3, "the refused deploy recorded nothing");
    Ok(r3)
}

/// A maintenance deploy (v4: a migration pending): the deploy daemon
/// killed while the hosts enter maintenance, the referee while the first
/// host upgrades. The migration runs once; clients get v1, the
/// maintenance page, then v4, never an error.
fn maintenance_deploy_through_kills(shop: &Shop, r3: &EnvRecord) -> anyhow::Result<EnvRecord> {
    let tower = &shop.tower;
    let running = loads(r3)?;
    let mut cli = spawn_deploy(tower, &shop.file("v4"))?;
    recorded(tower, "enter", 1)?;
    tower.kill_child("deployd")?;
    recorded(tower, "upgrade 1", 1)?;
    tower.kill_child("referee")?;
    let said = watch(tower)?;
    assert!(said.contains("#4: succeeded"), "{said}");
    cli.wait()?;
    no_failure(running, "shop v4");
    let r4 = record(tower, "shop", "prod")?;
    assert!(r4.in_maintenance().is_empty(), "{r4:?}");
    serving_instances_exist(tower, &r4)?;
    assert_eq!(shop.migrations()?, "2", "the v4 migration ran once");
    Ok(r4)
}

/// The inventory says the truth: `deployments check` finds every host
/// as recorded; a supervisor killed behind the tower's back is named;
/// put right by hand, the host reads as recorded again.
fn check_agrees_with_what_runs(shop: &Shop, r4: &EnvRecord) -> anyhow::Result<()> {
    let tower = &shop.tower;
    let (code, text) = shop.check()?;
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.matches("as the inventory says").count(), 2, "{text}");
    let web = Part::parse("web").map_err(anyhow::Error::msg)?;
    let instance = r4.hosts["crash-2"].services[&web].instance;
    let root = tower.root("crash-2");
    let replica = root.join(format!(
        "srv/services/auto-shop-prod-web/{instance}/replica-1"
    ));
    let pid: i32 = std::fs::read_to_string(replica.join("supervisor.pid"))?
        .trim()
        .parse()?;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let (code, text) = shop.check()?;
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "crash-2: differs from the inventory\n  BAD  web #{instance} replica 1: supervisor not running"
        )),
        "{text}"
    );
    // Its app stopped, the replica started again by the deployer's own
    // supervisor.
    let app: i32 = std::fs::read_to_string(replica.join("app.pid"))?
        .trim()
        .parse()?;
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(app),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let instance_dir = replica.parent().context("the instance's dir")?;
    let started = Command::new(root.join("srv/services/auto-bin/supervise"))
        .arg("start")
        .arg(instance_dir)
        .arg("1")
        .output()?;
    assert!(started.status.success(), "{started:?}");
    let (code, text) = shop.check()?;
    assert_eq!(code, Some(0), "{text}");
    Ok(())
}

/// Every step of a maintenance deploy (v6: migration 003 pending), the
/// deploy daemon killed at each; then every step of a rolling update (v6
/// with a shorter drain: new code, nothing pending), the referee killed
/// at each. Both end by themselves, serve, and the migration runs once.
fn every_step_of_two_deploys(shop: &Shop, r4: &EnvRecord) -> anyhow::Result<()> {
    let tower = &shop.tower;
    let running = loads(r4)?;
    let mut cli = spawn_deploy(tower, &shop.file("v6"))?;
    let steps = kill_at_every_step(tower, "deployd")?;
    eprintln!("deploy daemon killed at: {steps:?}");
    assert!(steps.len() >= 8, "{steps:?}");
    let said = watch(tower)?;
    assert!(said.contains("#5: succeeded"), "{said}");
    cli.wait()?;
    no_failure(running, "shop v6");
    let r5 = record(tower, "shop", "prod")?;
    serving_instances_exist(tower, &r5)?;
    assert_eq!(shop.migrations()?, "3", "the v6 migration ran once");
    let text = std::fs::read_to_string(shop.file("v6"))?.replace("drain: 300ms", "drain: 200ms");
    std::fs::write(shop.file("v6-drain"), text)?;
    let running = loads(&r5)?;
    let mut cli = spawn_deploy(tower, &shop.file("v6-drain"))?;
    let steps = kill_at_every_step(tower, "referee")?;
    eprintln!("referee killed at: {steps:?}");
    assert!(steps.len() >= 6, "{steps:?}");
    let said = watch(tower)?;
    assert!(said.contains("#6: succeeded"), "{said}");
    cli.wait()?;
    no_failure(running, "shop v6");
    let r6 = record(tower, "shop", "prod")?;
    assert_eq!(r6.history.len(), 6);
    serving_instances_exist(tower, &r6)?;
    assert_eq!(changes_of(tower, 6, "crash-1")?, 2, "probe and update");
    assert_eq!(changes_of(tower, 6, "crash-2")?, 1);
    let (code, text) = shop.check()?;
    assert_eq!(code, Some(0), "{text}");
    Ok(())
}
