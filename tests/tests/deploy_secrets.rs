//! Deploy secrets end to end (issue 19): a real app behind real nginx,
//! on a local host, reads a secret set with `vigie secrets set` (it
//! serves the value's SHA-256); the value is nowhere in the tower's data
//! dir, the audit, the deploy's and verbs' changes or the logs; the
//! replica's env file is 0600; setting it again restarts the replicas in
//! place under HTTP load (no request lost, no fetch, same instance
//! directory), which serve the new value; a rollback to the previous
//! instance brings back its code with the current value, never the one
//! it was deployed with; other tenants and operators without the grant
//! are refused.

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use anyhow::Context;
use sha2::{Digest, Sha256};
use vigie_tests::deploys::{record, Leftovers};
use vigie_tests::front::{add_operator, admin, client_with, fault, grants};
use vigie_tests::http_load::{get, LoadLoop};
use vigie_tests::{Launcher, Setup};
use vigie_wire::change::{Action, ChangeSpec, Step};
use vigie_wire::secrets::{SealedVar, Secret, SecretsAnswer, SecretsCall};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind};

const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 5);

/// A git repository whose app serves the SHA-256 of `$DB_PASSWORD`.
fn app_repo(dir: &Path) -> anyhow::Result<PathBuf> {
    let repo = dir.join("vault.git");
    std::fs::create_dir_all(&repo)?;
    std::fs::write(
        repo.join("app.py"),
        r#"import hashlib, http.server, os
DIGEST = hashlib.sha256(os.environ["DB_PASSWORD"].encode()).hexdigest()
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("ok" if self.path == "/health" else DIGEST).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((os.environ["BIND"], int(os.environ["PORT"])), Handler).serve_forever()
"#,
    )?;
    let git = |args: &[&str]| -> anyhow::Result<()> {
        let ok = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .status()?
            .success();
        anyhow::ensure!(ok, "git {args:?}");
        Ok(())
    };
    git(&["init", "-q"])?;
    git(&[
        "-c",
        "user.email=t@example.invalid",
        "-c",
        "user.name=t",
        "add",
        "app.py",
    ])?;
    git(&[
        "-c",
        "user.email=t@example.invalid",
        "-c",
        "user.name=t",
        "commit",
        "-qm",
        "v1",
    ])?;
    git(&["tag", "v1"])?;
    let mut app = std::fs::read_to_string(repo.join("app.py"))?;
    app.push_str("# v2: the same app, another instance\n");
    std::fs::write(repo.join("app.py"), app)?;
    git(&[
        "-c",
        "user.email=t@example.invalid",
        "-c",
        "user.name=t",
        "commit",
        "-qam",
        "v2",
    ])?;
    git(&["tag", "v2"])?;
    Ok(repo)
}

fn environment(repo: &Path, revision: &str) -> String {
    format!(
        "app: vault\nenvironment: prod\nhosts: role=vault\nports: 27400-27499\nservices:\n  web:\n    \
         repository: {}\n    revision: {revision}\n    start: exec python3 app.py\n    replicas: 2\n    \
         health: {{ http: /health, retries: 100, interval: 100ms, timeout: 1s }}\n    drain: 100ms\n    \
         env:\n      GREETING: hello\n      DB_PASSWORD: {{ secret: db_password }}\n",
        repo.display()
    )
}

fn sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every regular file under `dir` whose bytes hold `needle`.
fn files_holding(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for e in entries.flatten() {
        let path = e.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            found.extend(files_holding(&path, needle));
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                found.push(path);
            }
        }
    }
    found
}

fn proxy(tower: &Launcher) -> anyhow::Result<SocketAddr> {
    let r = record(tower, "vault", "prod")?;
    let port = r
        .hosts
        .get("vault-1")
        .and_then(|h| h.proxy_port)
        .context("a proxy port")?;
    Ok(SocketAddr::from((ADDRESS, port)))
}

/// What the app serves through nginx.
fn served(tower: &Launcher) -> anyhow::Result<String> {
    get(proxy(tower)?, "/", Duration::from_secs(5)).map_err(anyhow::Error::msg)
}

#[test]
fn a_secret_reaches_only_its_replicas_and_rotating_it_restarts_them_in_place() -> anyhow::Result<()>
{
    let work = tempfile::tempdir()?;
    let repo = app_repo(work.path())?;
    let env_file = work.path().join("vault.yml");
    std::fs::write(&env_file, environment(&repo, "v1"))?;
    let env_arg = env_file.display().to_string();
    let setup =
        Setup::new("secrets").host("vault-1", &[("role", "vault"), ("address", "127.0.0.5")]);
    let tower = Launcher::start(setup)?;
    let _leftovers = Leftovers(vec![tower.root("vault-1")]);
    let pid = std::process::id();
    let first = format!(
        "first-s3cret-{pid}-{}",
        work.path().display().to_string().len()
    );
    let second = format!("second-s3cret-{pid}-rotated");
    let third = format!("third-s3cret-{pid}-while-stopped");

    // A deploy naming a secret that is not set is refused at plan, by name.
    let refused = tower.cli(&["deploy", &env_arg])?;
    assert!(!refused.status.success(), "{}", text(&refused));
    assert!(
        text(&refused).contains("secret db_password of vault/prod is not set"),
        "{}",
        text(&refused)
    );

    set_and_listed(&tower, &first)?;

    let deployed = tower.cli(&["deploy", &env_arg])?;
    assert!(deployed.status.success(), "{}", text(&deployed));
    assert_eq!(served(&tower)?, sha256(&first));
    let env_path = tower
        .root("vault-1")
        .join("srv/services/auto-vault-prod-web/1/replica-1/env");
    let meta = std::fs::metadata(&env_path)?;
    assert_eq!(
        meta.permissions().mode() & 0o777,
        0o600,
        "{}",
        env_path.display()
    );
    let env_text = std::fs::read_to_string(&env_path)?;
    assert!(
        env_text.contains(&format!("DB_PASSWORD='{first}'")),
        "{env_text}"
    );
    assert!(env_text.contains("GREETING='hello'"), "{env_text}");

    // v2: a second instance, reading the same value.
    std::fs::write(&env_file, environment(&repo, "v2"))?;
    let deployed = tower.cli(&["deploy", &env_arg])?;
    assert!(deployed.status.success(), "{}", text(&deployed));
    assert_eq!(served(&tower)?, sha256(&first));

    rotation_restarts_in_place(&tower, &second, &env_arg)?;
    rollback_reads_the_current_value(&tower, &first, &second)?;
    a_stopped_service_reads_the_value_when_started(&tower, &second, &third)?;
    let r = record(&tower, "vault", "prod")?;
    // v1, v2, rotate, rollback, stop, start.
    assert_eq!(r.history.len(), 6, "{:?}", r.history);
    eprintln!("{}", rollout_times(&tower)?);

    hostile(&tower, work.path())?;
    one_environment(&tower, work.path())?;

    nowhere_but_on_the_host(&tower, &r, &third, &[&first, &second, &third])
}

/// Nowhere but the replicas' env files: not in the tower's data dir
/// (LevelDB, journals, logs, stashes), the audit, the changes of the
/// deploys and verbs (`status`) or any daemon's events.
fn nowhere_but_on_the_host(
    tower: &Launcher,
    r: &vigie_deployer::EnvRecord,
    current: &str,
    values: &[&str],
) -> anyhow::Result<()> {
    let audit = tower.cli(&["audit", "--json"])?;
    assert!(
        text(&audit).contains("secret db_password set (version 3)"),
        "{}",
        text(&audit)
    );
    let mut shown = text(&audit);
    for d in &r.history {
        for id in d.changes.values() {
            shown.push_str(&text(&tower.cli(&["status", id, "--json"])?));
        }
    }
    let events: Vec<String> = tower
        .events()
        .snapshot()
        .iter()
        .map(|e| format!("{e:?}"))
        .collect();
    shown.push_str(&events.join("\n"));
    shown.push_str(&text(&tower.cli(&["logs", "vault-1", "--json"])?));
    // The search finds it where it is: in the host's env files.
    let on_host = files_holding(&tower.root("vault-1"), current.as_bytes());
    assert!(!on_host.is_empty(), "the grep finds the value on the host");
    for value in values {
        assert!(!shown.contains(value), "{value} shown");
        let leaked = files_holding(&tower.data_dir(), value.as_bytes());
        assert!(leaked.is_empty(), "{value} in {leaked:?}");
    }
    Ok(())
}

/// Set from stdin; listed by name, version, who: never the value.
fn set_and_listed(tower: &Launcher, value: &str) -> anyhow::Result<()> {
    let set = tower.cli_input(
        &["secrets", "set", "vault/prod", "db_password"],
        format!("{value}\n").as_bytes(),
    )?;
    assert!(set.status.success(), "{}", text(&set));
    assert!(
        text(&set).contains("secret db_password set (version 1)"),
        "{}",
        text(&set)
    );
    let list = tower.cli(&["secrets", "list", "vault/prod", "--json"])?;
    let listed = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(
        listed.contains("\"name\":\"db_password\"") && listed.contains("\"version\":1"),
        "{listed}"
    );
    assert!(listed.contains("\"set_by\":\"admin\""), "{listed}");
    Ok(())
}

fn web() -> anyhow::Result<vigie_deployer::Part> {
    vigie_deployer::Part::parse("web").map_err(anyhow::Error::msg)
}

/// Each replica of `instance`, asked directly, serves the digest of
/// `value`; its env file holds `value` (and not `not`), mode 0600, and
/// nothing of the rewrite is left beside it.
fn replicas_read(tower: &Launcher, instance: u32, value: &str, not: &str) -> anyhow::Result<()> {
    let r = record(tower, "vault", "prod")?;
    let placed = &r.hosts["vault-1"].services[&web()?];
    assert_eq!(placed.instance, instance, "{r:?}");
    for port in &placed.ports {
        let body = get(
            SocketAddr::from((ADDRESS, *port)),
            "/",
            Duration::from_secs(5),
        )
        .map_err(anyhow::Error::msg)?;
        assert_eq!(body, sha256(value), "replica on port {port}");
    }
    let dir = tower
        .root("vault-1")
        .join(format!("srv/services/auto-vault-prod-web/{instance}"));
    for replica in 1..=placed.replicas {
        let replica = dir.join(format!("replica-{replica}"));
        let env = std::fs::read_to_string(replica.join("env"))?;
        assert!(env.contains(&format!("DB_PASSWORD='{value}'")), "{env}");
        assert!(
            !env.contains(not) && env.contains("GREETING='hello'"),
            "{env}"
        );
        let mode = std::fs::metadata(replica.join("env"))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", replica.display());
        for left in ["env.secrets", "env.was", "env.new"] {
            assert!(!replica.join(left).exists(), "{left} left");
        }
    }
    Ok(())
}

/// `vigie secrets set` on a name the replicas read, under HTTP load:
/// the verb `rotate` restarts them in place, one at a time (0 failed),
/// with the new value, no fetch, in the same instance directory;
/// recorded and audited like a verb.
fn rotation_restarts_in_place(tower: &Launcher, value: &str, file: &str) -> anyhow::Result<()> {
    let before = record(tower, "vault", "prod")?;
    let load = LoadLoop::start(proxy(tower)?, Duration::from_secs(120));
    let rotated = tower.cli_input(
        &["secrets", "set", "vault/prod", "db_password"],
        value.as_bytes(),
    )?;
    assert!(rotated.status.success(), "{}", text(&rotated));
    assert!(text(&rotated).contains("(version 2)"), "{}", text(&rotated));
    assert!(
        text(&rotated).contains("restarting the replicas"),
        "{}",
        text(&rotated)
    );
    let watched = tower.cli(&["deployments", "watch", "vault/prod"])?;
    assert!(
        text(&watched).contains("rotate vault/prod: succeeded"),
        "{}",
        text(&watched)
    );
    let report = load.stop();
    eprintln!(
        "rotation: {} served, {} failed",
        report.served,
        report.failures.len()
    );
    assert!(report.served > 0, "nothing served");
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.answers.last(),
        Some(&sha256(value)),
        "{:?}",
        report.answers
    );
    let after = record(tower, "vault", "prod")?;
    assert_eq!(after.hosts, before.hosts, "same instance, same ports");
    replicas_read(tower, 2, value, "first-s3cret")?;
    let entry = after.history.last().context("an entry")?;
    assert_eq!(entry.verb.as_deref(), Some("rotate db_password"));
    let change = entry.changes.get("vault-1").context("its change")?;
    let status = text(&tower.cli(&["status", change, "--json"])?);
    assert!(
        status.contains("current secrets of web #2 replica 2"),
        "{status}"
    );
    assert!(!status.contains("fetch web"), "no fetch: {status}");
    let audit = text(&tower.cli(&["audit", "--json"])?);
    assert!(audit.contains("vault/prod: rotate (rollout"), "{audit}");
    // The same file deployed again is up to date: the replicas already
    // read version 2, nothing is replaced.
    let again = tower.cli(&["deploy", "--plan", file])?;
    assert!(
        text(&again).contains("no component changed"),
        "{}",
        text(&again)
    );
    Ok(())
}

/// A rollback returns code, not an old credential: the previous instance
/// (deployed with the first value) starts with the current one.
fn rollback_reads_the_current_value(
    tower: &Launcher,
    first: &str,
    second: &str,
) -> anyhow::Result<()> {
    let load = LoadLoop::start(proxy(tower)?, Duration::from_secs(120));
    let said = tower.cli(&["deployments", "rollback", "vault/prod"])?;
    assert!(
        text(&said).contains("rollback vault/prod: succeeded"),
        "{}",
        text(&said)
    );
    let report = load.stop();
    eprintln!(
        "rollback: {} served, {} failed",
        report.served,
        report.failures.len()
    );
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    assert_eq!(
        report.answers.last(),
        Some(&sha256(second)),
        "{:?}",
        report.answers
    );
    replicas_read(tower, 1, second, first)
}

/// A secret set while its service is stopped restarts nothing (the
/// rotation says why); `start` gives the replicas the current value.
fn a_stopped_service_reads_the_value_when_started(
    tower: &Launcher,
    was: &str,
    value: &str,
) -> anyhow::Result<()> {
    let stopped = tower.cli(&["deployments", "stop", "vault/prod"])?;
    assert!(stopped.status.success(), "{}", text(&stopped));
    let set = tower.cli_input(
        &["secrets", "set", "vault/prod", "db_password"],
        value.as_bytes(),
    )?;
    assert!(text(&set).contains("(version 3)"), "{}", text(&set));
    let watched = text(&tower.cli(&["deployments", "watch", "vault/prod"])?);
    assert!(
        watched.contains("no running replica of vault/prod reads secret db_password"),
        "{watched}"
    );
    let env = tower
        .root("vault-1")
        .join("srv/services/auto-vault-prod-web/1/replica-1/env");
    let text_now = std::fs::read_to_string(env)?;
    assert!(
        text_now.contains(was),
        "a stopped replica's file is not touched"
    );
    let started = tower.cli(&["deployments", "start", "vault/prod"])?;
    assert!(
        text(&started).contains("start vault/prod: succeeded"),
        "{}",
        text(&started)
    );
    replicas_read(tower, 1, value, was)
}

/// How long each rollout took, from the deploy daemon's own event
/// timestamps (BENCHMARKS.md material, not a timed assertion).
fn rollout_times(tower: &Launcher) -> anyhow::Result<String> {
    let events = tower.events().snapshot();
    let at = |e: &vigie_tests::Event| -> anyhow::Result<std::time::SystemTime> {
        Ok(humantime::parse_rfc3339(
            e.str("timestamp").context("a timestamp")?,
        )?)
    };
    let mut took = Vec::new();
    for end in events.iter().filter(|e| e.name == "rollout_ended") {
        let id = end.str("rollout");
        let start = events
            .iter()
            .find(|e| e.name == "rollout_started" && e.str("rollout") == id);
        if let Some(start) = start {
            let d = at(end)?.duration_since(at(start)?).unwrap_or_default();
            took.push(format!("{} {:?}", end.str("end").unwrap_or_default(), d));
        }
    }
    Ok(format!("rollouts, in order: {took:?}"))
}

/// Other tenants and operators without the grant: refused, nothing lost.
fn hostile(tower: &Launcher, dir: &Path) -> anyhow::Result<()> {
    let list = SecretsCall::List {
        app: "vault".into(),
        environment: "prod".into(),
    };
    let remove = SecretsCall::Remove {
        app: "vault".into(),
        environment: "prod".into(),
        name: "db_password".into(),
    };
    // Another tenant's operator with every grant sees no such secret.
    let keys = add_operator(
        tower,
        dir,
        "other",
        "mallory",
        &grants(&["secrets.admin", "changes.submit", "changes.read"])?,
    )?;
    let mut other = client_with(tower, &keys, None)?;
    match other.call(ApiCall::Secrets(list.clone()))? {
        vigie_wire::tower::ApiAnswer::Secrets(vigie_wire::secrets::SecretsAnswer::List(v)) => {
            assert!(v.is_empty(), "{v:?}")
        }
        a => anyhow::bail!("{a:?}"),
    }
    assert_eq!(
        fault(other.call(ApiCall::Secrets(remove.clone()))),
        Some(ApiFaultKind::NotFound)
    );
    // Our tenant's deployer without secrets.admin, or with it over some
    // hosts only: refused.
    let keys = add_operator(
        tower,
        dir,
        "default",
        "deployer",
        &grants(&["changes.submit", "changes.read"])?,
    )?;
    let mut deployer = client_with(tower, &keys, None)?;
    assert_eq!(
        fault(deployer.call(ApiCall::Secrets(list.clone()))),
        Some(ApiFaultKind::Forbidden)
    );
    assert_eq!(
        fault(deployer.call(ApiCall::Secrets(remove.clone()))),
        Some(ApiFaultKind::Forbidden)
    );
    let keys = add_operator(
        tower,
        dir,
        "default",
        "scoped",
        &grants(&["secrets.admin@vault-*"])?,
    )?;
    let mut scoped = client_with(tower, &keys, None)?;
    assert_eq!(
        fault(scoped.call(ApiCall::Secrets(list))),
        Some(ApiFaultKind::Forbidden)
    );
    // A change of its own asking the tower to write the secret on a host
    // it may submit to: refused (only the tower's deploys get secrets).
    let steal = ChangeSpec {
        title: "steal".into(),
        steps: vec![Step {
            name: "write it".into(),
            action: Action::SecretFile {
                path: "/tmp/stolen".into(),
                environment: "vault/prod".into(),
                content: Vec::new(),
                secrets: vec![SealedVar {
                    var: "X".into(),
                    name: "db_password".into(),
                    version: 0,
                    sealed: Vec::new(),
                }],
            },
        }],
    };
    let submit = ApiCall::Submit {
        spec: steal,
        target: "vault-1".into(),
    };
    assert_eq!(
        fault(deployer.call(submit.clone())),
        Some(ApiFaultKind::Forbidden)
    );
    assert_eq!(
        fault(admin(tower, None)?.call(submit)),
        Some(ApiFaultKind::Forbidden)
    );
    assert!(!tower.root("vault-1").join("tmp/stolen").exists());
    // Nothing lost: the secret is still there, as the admin set it.
    let list = tower.cli(&["secrets", "list", "vault/prod", "--json"])?;
    assert!(
        String::from_utf8_lossy(&list.stdout).contains("\"version\":3"),
        "{}",
        text(&list)
    );
    Ok(())
}

/// `secrets.admin@vault/prod`: that environment's secrets (one the deploy
/// does not read, so nothing restarts), never another's — refused,
/// audited as the deploy's refusals are.
fn one_environment(tower: &Launcher, dir: &Path) -> anyhow::Result<()> {
    let keys = add_operator(
        tower,
        dir,
        "default",
        "envadmin",
        &grants(&["secrets.admin@vault/prod"])?,
    )?;
    let mut envadmin = client_with(tower, &keys, None)?;
    let set = |env: &str| {
        ApiCall::Secrets(SecretsCall::Set {
            app: "vault".into(),
            environment: env.into(),
            name: "api_token".into(),
            value: Secret::new(b"t0ken".to_vec()),
        })
    };
    match envadmin.call(set("prod"))? {
        ApiAnswer::Secrets(SecretsAnswer::Set {
            version: 1,
            restart: None,
            ..
        }) => {}
        a => anyhow::bail!("{a:?}"),
    }
    assert_eq!(
        fault(envadmin.call(set("staging"))),
        Some(ApiFaultKind::Forbidden)
    );
    let staging = tower.cli(&["secrets", "list", "vault/staging", "--json"])?;
    assert!(
        !String::from_utf8_lossy(&staging.stdout).contains("api_token"),
        "{}",
        text(&staging)
    );
    let audit = text(&tower.cli(&["audit", "--operator", "envadmin"])?);
    assert!(
        audit.contains("operator_refused") && audit.contains("vault/staging"),
        "{audit}"
    );
    Ok(())
}
