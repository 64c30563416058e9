//! Host metrics and logs, end to end through the real binary: a step that
//! prints far more than a step result's 4 KiB tail is read back whole with
//! `vigie logs HOST --change ID`; permissions apply (`logs.read` scoped by
//! host, per tenant: another tenant's host does not exist); an unknown or
//! offline host is a clear error; `vigie hosts --metrics` shows the
//! samples plugs and agents send; agents answer through the majordomo.

use std::time::Duration;

use anyhow::Context;

use vigie_tests::front::{add_operator, client_with, fault, grants};
use vigie_tests::{Daemon, Launcher, Setup};
use vigie_wire::observe::{LogSource, LogsQuery};
use vigie_wire::tower::{ApiCall, ApiFaultKind, ChangeState};

const WAIT: Duration = Duration::from_secs(60);

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A change whose one step prints `lines` numbered lines (about 9 KiB for
/// 2,000) and a line on stderr; returns its id once it succeeded.
fn chatty(t: &Launcher, host: &str, lines: u32) -> anyhow::Result<String> {
    let spec = vigie_changes::parse_change(
        "t.yml",
        &format!("title: chatty\nsteps:\n  - run: \"seq 1 {lines}; echo on-stderr >&2\"\n"),
    )?;
    let c = t.api()?.changes(ApiCall::Submit {
        spec,
        target: host.into(),
    })?;
    let id = c[0].id.clone();
    let done = t.wait_final(std::slice::from_ref(&id), WAIT)?;
    anyhow::ensure!(done[0].state == ChangeState::Succeeded, "{:?}", done[0]);
    // The step's result keeps only a tail: the logs are what has it all.
    let tail = &done[0].steps[0]
        .result
        .as_ref()
        .expect("result")
        .stdout_tail;
    anyhow::ensure!(!tail.starts_with("1\n"), "the tail holds everything");
    Ok(id)
}

/// Every number 1..=n on a line of its own (after the CLI's ` | `).
fn has_all_numbers(out: &str, n: u32) -> Result<(), String> {
    let got: Vec<u32> = out
        .lines()
        .filter(|l| l.contains(" stdout | "))
        .filter_map(|l| l.rsplit(" | ").next()?.parse().ok())
        .collect();
    let want: Vec<u32> = (1..=n).collect();
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{} numbered lines, first {:?}, last {:?}",
            got.len(),
            got.first(),
            got.last()
        ))
    }
}

fn logs_query(host: &str) -> ApiCall {
    ApiCall::Logs(LogsQuery {
        host: host.into(),
        source: LogSource::Steps { change: None },
        since_ms: None,
        cursor: None,
        max_bytes: 1024,
    })
}

#[test]
fn a_step_s_whole_output_is_read_back_and_permissions_apply() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("logs").host("web-1", &[]))?;
    let id = chatty(&t, "web-1", 2_000)?;

    let out = t.cli(&["logs", "web-1", "--change", &id])?;
    anyhow::ensure!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    has_all_numbers(&shown, 2_000).map_err(anyhow::Error::msg)?;
    assert!(shown.contains("step 1 stderr | on-stderr"), "{shown}");
    // In small chunks (the CLI follows the cursor) nothing is lost either.
    let json = t.cli(&["--json", "logs", "web-1", "--change", &id, "--since", "10m"])?;
    anyhow::ensure!(json.status.success(), "{}", text(&json.stderr));
    // stdout and stderr are read apart: the first line of stdout, wherever
    // stderr's line landed.
    let lines: Vec<serde_json::Value> = text(&json.stdout)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    assert_eq!(lines.len(), 2_001, "{}", text(&json.stdout));
    let first = lines
        .iter()
        .find(|l| l["stream"] == "stdout")
        .ok_or_else(|| anyhow::anyhow!("no stdout line"))?;
    assert_eq!(first["change"], id.as_str());
    assert_eq!(first["step"], 1);
    assert_eq!(first["text"], "1");

    // An unknown host, and a registered one that is offline: said clearly.
    let out = t.cli(&["logs", "nosuch"])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no host nosuch"),
        "{}",
        text(&out.stderr)
    );
    assert!(t.cli(&["hosts", "add", "ghost"])?.status.success());
    let out = t.cli(&["logs", "ghost"])?;
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("host ghost is offline"),
        "{}",
        text(&out.stderr)
    );

    // Permissions: logs.read over other hosts only, none at all, another tenant.
    let dir = t.dir.path();
    let elsewhere = add_operator(
        &t,
        dir,
        "default",
        "elsewhere",
        &grants(&["logs.read@db-*"])?,
    )?;
    let r = client_with(&t, &elsewhere, None)?.call(logs_query("web-1"));
    assert_eq!(fault(r), Some(ApiFaultKind::Forbidden));
    let reader = add_operator(&t, dir, "default", "reader", &grants(&["hosts.read"])?)?;
    let r = client_with(&t, &reader, None)?.call(logs_query("web-1"));
    assert_eq!(fault(r), Some(ApiFaultKind::Forbidden));
    let other = add_operator(
        &t,
        dir,
        "globex",
        "other",
        &grants(&["logs.read", "hosts.read"])?,
    )?;
    match client_with(&t, &other, None)?.call(logs_query("web-1")) {
        Err(vigie_client::ClientError::Refused(f)) => {
            assert_eq!(f.kind, ApiFaultKind::NotFound);
            assert!(f.message.contains("no host web-1"), "{}", f.message);
        }
        r => panic!("another tenant read web-1's logs: {r:?}"),
    }
    let r = client_with(&t, &other, None)?.call(ApiCall::HostMetrics {
        host: Some("web-1".into()),
    });
    assert_eq!(fault(r), Some(ApiFaultKind::NotFound));
    // The one with the permission reads them.
    let ok = add_operator(&t, dir, "default", "ok", &grants(&["logs.read@web-*"])?)?;
    client_with(&t, &ok, None)?.call(logs_query("web-1"))?;
    Ok(())
}

/// Runs one change of `run` on `host`; fails unless it succeeded.
fn run_on(t: &Launcher, host: &str, run: &str) -> anyhow::Result<String> {
    let spec =
        vigie_changes::parse_change("t.yml", &format!("title: t\nsteps:\n  - run: \"{run}\"\n"))?;
    let c = t.api()?.changes(ApiCall::Submit {
        spec,
        target: host.into(),
    })?;
    let done = t.wait_final(&[c[0].id.clone()], WAIT)?;
    anyhow::ensure!(done[0].state == ChangeState::Succeeded, "{:?}", done[0]);
    Ok(c[0].id.clone())
}

/// A `vigie --log-json logs ARGS --follow` running: its stdout lines on a
/// channel, its events (`logs_page`, one per call) in an [`EventLog`].
struct Following {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    events: vigie_tests::EventLog,
    /// Every stderr line, events and notes.
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Following {
    fn start(t: &Launcher, args: &[&str]) -> anyhow::Result<Self> {
        use std::io::BufRead;
        let mut child = std::process::Command::new(vigie_tests::vigie_bin())
            .args(["--log-json", "logs"])
            .args(args)
            .arg("--follow")
            .env("XDG_CONFIG_HOME", t.dir.path().join("xdg"))
            .env("VIGIE_LOG", "warn,vigie=debug")
            .env_remove("VIGIE_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().context("stdout")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let events = vigie_tests::EventLog::default();
        let said = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (log, all) = (events.clone(), said.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                log.push_line(&line);
                all.lock().unwrap_or_else(|p| p.into_inner()).push(line);
            }
        });
        Ok(Self {
            child,
            lines,
            events,
            stderr: said,
        })
    }

    /// Waits until its first call was answered: it follows from there.
    fn first_page(&self) -> anyhow::Result<vigie_tests::Event> {
        self.events
            .wait_n("logs_page", 1, WAIT, |e| e.name == "logs_page")
    }

    /// The lines it printed until one ending with `marker` (that one
    /// last), or fails with those seen (one deadline for the whole wait).
    fn until(&self, marker: &str) -> anyhow::Result<Vec<String>> {
        let deadline = std::time::Instant::now() + WAIT;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) if l.ends_with(marker) => {
                    seen.push(l);
                    return Ok(seen);
                }
                Ok(l) => seen.push(l),
                Err(_) => anyhow::bail!("follow never showed {marker:?}: {seen:?}"),
            }
        }
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_service_s_output_is_read_and_follow_shows_what_comes_next() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("svc").host("web-1", &[]))?;
    // What the deployer's supervisor writes for a replica; and a replica
    // of another service that has printed nothing yet.
    let rep = "srv/services/auto-shop-prod-web/1/replica-1";
    let quiet = "srv/services/auto-shop-prod-quiet/1/replica-1";
    run_on(
        &t,
        "web-1",
        &format!(
            "mkdir -p {rep} {quiet} && : > {quiet}/app.log && printf 'listening on 8080\\nGET / 200\\n' > {rep}/app.log; echo earlier-marker"
        ),
    )?;
    let out = t.cli(&["logs", "web-1", "--service", "auto-shop-prod-web"])?;
    anyhow::ensure!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("1/1 | listening on 8080\n"), "{shown}");
    assert!(shown.contains("1/1 | GET / 200\n"), "{shown}");
    let out = t.cli(&["logs", "web-1", "--service", "auto-none-prod-web"])?;
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("no logs of service auto-none-prod-web"));

    // Issue 19: a service that printed nothing yet is not an error: no
    // line, exit 0, a note on stderr; the same through --target.
    for args in [
        &["logs", "web-1", "--service", "auto-shop-prod-quiet"][..],
        &[
            "logs",
            "--target",
            "web-*",
            "--service",
            "auto-shop-prod-quiet",
        ],
    ] {
        let out = t.cli(args)?;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "", "{args:?}");
        assert!(
            text(&out.stderr).contains("auto-shop-prod-quiet has printed no line yet"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }

    // --follow starts at the end, like `tail -f`: what a later change
    // prints shows up without asking again, what was there before does not.
    let follow = Following::start(&t, &["web-1"])?;
    let first = follow.first_page()?;
    assert_eq!(first.fields["from_end"], true, "{first:?}");
    let later = run_on(&t, "web-1", "echo later-marker")?;
    let seen = follow.until("stdout | later-marker")?;
    assert!(
        seen.iter().all(|l| !l.contains("earlier-marker")),
        "--follow replayed the history: {seen:?}"
    );
    assert!(seen.iter().any(|l| l.contains(&later)), "{seen:?}");
    // Following from an empty store is not "beyond retention".
    let said = follow.stderr.lock().map(|s| s.clone()).unwrap_or_default();
    assert!(said.iter().all(|l| !l.contains("rotated away")), "{said:?}");
    drop(follow);
    // With --since, it starts there.
    let since = Following::start(&t, &["web-1", "--since", "1h"])?;
    let seen = since.until("stdout | earlier-marker")?;
    assert!(seen.iter().all(|l| !l.contains("later-marker")), "{seen:?}");
    since.until("stdout | later-marker")?;
    Ok(())
}

#[test]
fn host_metrics_are_shown_per_host_and_an_agent_s_logs_come_through_the_majordomo(
) -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("metrics").host("web-1", &[]))?;
    t.events().wait_n("host_sampled web-1", 1, WAIT, |e| {
        e.name == "host_sampled" && e.str("host") == Some("web-1")
    })?;
    let out = t.cli(&["--json", "hosts", "--metrics"])?;
    anyhow::ensure!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(text(&out.stdout).trim())?;
    assert_eq!(v["host"], "web-1");
    assert_eq!(v["stale"], false);
    assert!(v["memory_total_bytes"].as_u64() > Some(0), "{v}");
    assert!(v["disk_total_bytes"].as_u64() > Some(0), "{v}");
    assert!(v["cpus"].as_u64() >= Some(1), "{v}");
    let table = t.cli(&["hosts", "--metrics"])?;
    assert!(
        text(&table.stdout).starts_with("HOST"),
        "{}",
        text(&table.stdout)
    );
    assert!(text(&table.stdout).contains("web-1"));

    // An agent: its samples and its logs travel through the majordomo.
    let key = t.dir.path().join("far-1.key");
    let out = std::process::Command::new(vigie_tests::vigie_bin())
        .args(["keys", "gen", "--out"])
        .arg(&key)
        .output()?;
    anyhow::ensure!(out.status.success(), "{}", text(&out.stderr));
    let public = text(&out.stdout).trim().to_owned();
    assert!(t
        .cli(&["hosts", "add", "far-1", "--key", &public])?
        .status
        .success());
    let tower_key = std::fs::read_to_string(t.data_dir().join("keys/tower.public"))?;
    let agent = Daemon::agent(
        &t.endpoint("majordomo"),
        &tower_key,
        &key,
        "far-1",
        &t.root("far-1"),
        &t.dir.path().join("agents/far-1"),
    )?;
    agent.events.wait("agent_connected", WAIT)?;
    t.events().wait_n("host_sampled far-1", 1, WAIT, |e| {
        e.name == "host_sampled" && e.str("host") == Some("far-1")
    })?;
    let id = chatty(&t, "far-1", 1_500)?;
    let out = t.cli(&["logs", "far-1", "--change", &id])?;
    anyhow::ensure!(out.status.success(), "{}", text(&out.stderr));
    has_all_numbers(&text(&out.stdout), 1_500).map_err(anyhow::Error::msg)?;
    Ok(())
}
