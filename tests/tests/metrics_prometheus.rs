//! The tower's metrics as an operator gets them: a real Prometheus (the
//! Debian package) scrapes a running tower with the shipped
//! `examples/prometheus.yml`, authenticated by the tower's bearer token
//! (`credentials_file`), and the values are read back through
//! Prometheus's HTTP API after running changes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;
use vigie_tests::{front, Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const LONG: Duration = Duration::from_secs(60);

/// A Prometheus server on a free loopback port with a throwaway storage
/// dir; killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Prometheus {
    /// Starts Prometheus on `config` and waits until it says it is ready.
    fn start(dir: &Path, config: &Path) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={listen}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                anyhow::anyhow!("cannot run prometheus (scripts/deps installs it): {e}")
            })?;
        let stderr = child
            .stderr
            .take()
            .ok_or_else(|| anyhow::anyhow!("no stderr"))?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let prom = Self {
            child,
            url: format!("http://{listen}"),
        };
        // Prometheus's own structured log (logfmt): its readiness message.
        let mut seen = Vec::new();
        loop {
            match rx.recv_timeout(LONG) {
                Ok(line) if line.contains("msg=\"Server is ready to receive web requests.\"") => {
                    return Ok(prom)
                }
                Ok(line) => seen.push(line),
                Err(_) => anyhow::bail!("prometheus never got ready:\n{}", seen.join("\n")),
            }
        }
    }

    /// The value of an instant query returning one series.
    fn value(&self, query: &str) -> anyhow::Result<f64> {
        let text = ureq::get(&format!("{}/api/v1/query", self.url))
            .timeout(Duration::from_secs(10))
            .query("query", query)
            .call()?
            .into_string()?;
        let body: Value = serde_json::from_str(&text)?;
        let result = &body["data"]["result"];
        let series = result
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("{query}: no result in {body}"))?;
        anyhow::ensure!(series.len() == 1, "{query}: want one series, got {body}");
        let v = series[0]["value"][1]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("{query}: no value in {body}"))?;
        Ok(v.parse()?)
    }
}

/// Where the example reads the token: the example tower's data dir.
const EXAMPLE_TOKEN: &str = "credentials_file: ../data/example/keys/metrics.token";

/// The shipped example, pointed at this tower (and its token file) and
/// scraping every second.
fn prometheus_config(dir: &Path, target: &str, token: &Path) -> anyhow::Result<PathBuf> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/prometheus.yml");
    let text = std::fs::read_to_string(&shipped)?;
    anyhow::ensure!(
        text.contains("127.0.0.1:9464") && text.contains(EXAMPLE_TOKEN),
        "the example's target or token moved"
    );
    let text = text
        .replace("127.0.0.1:9464", target)
        .replace(
            EXAMPLE_TOKEN,
            &format!("credentials_file: {}", token.display()),
        )
        .replace("scrape_interval: 15s", "scrape_interval: 1s")
        .replace("scrape_timeout: 5s", "scrape_timeout: 1s");
    let path = dir.join("prometheus.yml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn spec(yaml: &str) -> vigie_wire::change::ChangeSpec {
    vigie_changes::parse_change("test.yml", yaml).expect("valid change")
}

#[test]
fn prometheus_reads_back_what_the_tower_ran() -> anyhow::Result<()> {
    // Every scrape an event (at debug), to know which ones Prometheus made.
    let tower = Launcher::start_env(
        Setup::new("prom").host("web-1", &[]).host("web-2", &[]),
        &[("VIGIE_LOG", Path::new("info,vigie_metrics=debug"))],
    )?;
    let started = tower.wait_from("metrics", "metrics_started", 1, LONG)?;
    assert_eq!(started.fields["subscribed"], Value::Bool(true));
    let address = started
        .str("address")
        .ok_or_else(|| anyhow::anyhow!("metrics_started without address"))?;
    let target = address.trim_start_matches("http://").to_owned();
    let dir = tempfile::tempdir()?;
    let token = tower.data_dir().join("keys").join("metrics.token");
    let config = prometheus_config(dir.path(), &target, &token)?;
    let prom = Prometheus::start(dir.path(), &config)?;

    // 3 runs of a two-step change on each host succeed; one fails on
    // web-1 and is rolled back.
    let mut ids = Vec::new();
    let mut api = tower.api()?;
    for i in 0..3 {
        let ok = format!(
            "title: ok {i}\nsteps:\n  - run: echo {i} >> trace\n  - file: f{i}\n    content: x\n"
        );
        for v in api.changes(ApiCall::Submit {
            spec: spec(&ok),
            target: "web-*".into(),
        })? {
            ids.push(v.id);
        }
    }
    let bad = "title: bad\nsteps:\n  - run: echo a >> trace\n    undo: echo undone >> trace\n  - run: exit 3\n";
    for v in api.changes(ApiCall::Submit {
        spec: spec(bad),
        target: "web-1".into(),
    })? {
        ids.push(v.id);
    }
    let done = tower.wait_final(&ids, LONG)?;
    let succeeded = done
        .iter()
        .filter(|v| v.state == ChangeState::Succeeded)
        .count();
    assert_eq!(succeeded, 6);
    // A call through the front door, counted by verb and outcome.
    let out = tower.cli(&["hosts"])?;
    assert!(out.status.success());
    // A forbidden one counts too...
    let keys = dir.path().join("keys");
    std::fs::create_dir_all(&keys)?;
    let reader = front::add_operator(
        &tower,
        &keys,
        "default",
        "reader",
        &front::grants(&["changes.read"])?,
    )?;
    let denied = front::client_with(&tower, &reader, None)?.call(ApiCall::Submit {
        spec: spec(bad),
        target: "web-1".into(),
    });
    assert!(denied.is_err(), "{denied:?}");
    // ...and so does a key the tower does not know, refused at the handshake.
    let stranger = vigie_majordomo::keys::KeyPair::generate();
    let knocked =
        front::client_with(&tower, &stranger, None).and_then(|mut c| Ok(c.call(ApiCall::Hosts)?));
    assert!(knocked.is_err());
    tower.events().wait("handshake_refused", LONG)?;

    for host in ["web-1", "web-2"] {
        tower
            .events()
            .wait_n(&format!("host_sampled {host}"), 1, LONG, |e| {
                e.name == "host_sampled" && e.str("host") == Some(host)
            })?;
    }
    // Every change ended before this point; the first scrape served after
    // it read them, and the one after that proves Prometheus stored it
    // (a scrape loop appends its samples before its next scrape).
    let from = tower.events().count("scrape_served");
    tower
        .events()
        .wait_n("scrape_served", from + 3, LONG, |e| {
            e.name == "scrape_served"
        })?;
    // Prometheus authenticated: not one of its scrapes was refused.
    assert_eq!(tower.events().count("scrape_refused"), 0);

    let v = |q: &str| prom.value(q);
    assert_eq!(v(r#"vigie_changes_total{state="succeeded"}"#)?, 6.0);
    assert_eq!(
        v(r#"vigie_changes_total{state="queued",tenant="default"}"#)?,
        7.0
    );
    assert_eq!(v(r#"vigie_changes_total{state="rolled_back"}"#)?, 1.0);
    assert_eq!(v(r#"vigie_rollbacks_total{outcome="rolled_back"}"#)?, 1.0);
    assert_eq!(
        v(r#"vigie_steps_total{kind="file",outcome="succeeded"}"#)?,
        6.0
    );
    assert_eq!(v(r#"vigie_steps_total{kind="run",outcome="failed"}"#)?, 1.0);
    assert_eq!(v(r#"vigie_steps_total{kind="run",outcome="undone"}"#)?, 1.0);
    assert_eq!(v("vigie_dispatch_latency_seconds_count")?, 7.0);
    assert_eq!(v("vigie_change_duration_seconds_count")?, 7.0);
    assert_eq!(v(r#"vigie_hosts{state="online"}"#)?, 2.0);
    assert_eq!(v("vigie_queue_depth")?, 0.0);
    assert_eq!(v("vigie_referee_up")?, 1.0);
    assert_eq!(
        v(r#"vigie_calls_total{verb="hosts.read",outcome="ok"}"#)?,
        1.0
    );
    assert_eq!(
        v(r#"vigie_calls_total{verb="changes.submit",outcome="forbidden"}"#)?,
        1.0
    );
    assert!(v("vigie_handshakes_refused_total")? >= 1.0);
    assert!(v("vigie_escalator_durable_writes_total")? > 0.0);
    assert!(v("vigie_escalator_database_bytes")? > 0.0);
    // Every fdatasync turn is in the commit histograms.
    assert!(v("vigie_escalator_commit_seconds_count")? > 0.0);
    assert_eq!(
        v(r#"vigie_escalator_commit_writes_bucket{le="+Inf"}"#)?,
        v("vigie_escalator_commit_seconds_count")?
    );
    // Each host's resources, labelled by host only.
    for host in ["web-1", "web-2"] {
        assert!(
            v(&format!(
                r#"vigie_host_memory_total_bytes{{host="{host}"}}"#
            ))? > 0.0
        );
        assert!(v(&format!(r#"vigie_host_disk_total_bytes{{host="{host}"}}"#))? > 0.0);
        assert!(v(&format!(r#"vigie_host_cpus{{host="{host}"}}"#))? >= 1.0);
    }
    assert_eq!(v(r#"up{job="vigie"}"#)?, 1.0);
    Ok(())
}

/// `GET url` with the tower's bearer token: the status and body,
/// whatever the status.
fn get(url: &str, token: &str) -> anyhow::Result<(u16, String)> {
    let req = ureq::get(url)
        .timeout(Duration::from_secs(10))
        .set("Authorization", &format!("Bearer {token}"));
    match req.call() {
        Ok(r) => Ok((r.status(), r.into_string()?)),
        Err(ureq::Error::Status(code, r)) => Ok((code, r.into_string()?)),
        Err(e) => Err(e.into()),
    }
}

fn has_line(body: &str, prefix: &str) -> bool {
    body.lines().any(|l| l.starts_with(prefix))
}

#[test]
fn a_scrape_while_the_referee_is_unreachable_drops_its_series() -> anyhow::Result<()> {
    use nix::sys::signal::{kill, Signal};
    let tower = Launcher::start(Setup::new("stale").host("web-1", &[]))?;
    let started = tower.wait_from("metrics", "metrics_started", 1, LONG)?;
    let url = format!(
        "{}/metrics",
        started
            .str("address")
            .ok_or_else(|| anyhow::anyhow!("no address"))?
    );
    tower.events().wait_n("host_sampled web-1", 1, LONG, |e| {
        e.name == "host_sampled" && e.str("host") == Some("web-1")
    })?;
    let token = std::fs::read_to_string(tower.data_dir().join("keys").join("metrics.token"))?;
    let get = |url: &str| get(url, token.trim());
    let (code, body) = get(&url)?;
    assert_eq!(code, 200);
    assert!(
        has_line(&body, r#"vigie_hosts{state="online"} 1"#),
        "{body}"
    );
    assert!(has_line(&body, "vigie_referee_up 1"), "{body}");
    assert!(
        has_line(&body, r#"vigie_host_uptime_seconds{host="web-1"}"#),
        "{body}"
    );

    // A referee that does not answer (stopped, as while it restarts): the
    // scrape still answers, says so, and shows no host or queue figure.
    let referee = tower.child_pid("referee")?;
    kill(referee, Signal::SIGSTOP)?;
    let during = get(&url);
    kill(referee, Signal::SIGCONT)?;
    let (code, body) = during?;
    assert_eq!(code, 200);
    assert!(has_line(&body, "vigie_referee_up 0"), "{body}");
    for stale in [
        "vigie_hosts{",
        "vigie_queue_depth ",
        "vigie_queue_deepest{",
        "vigie_host_",
    ] {
        assert!(
            !has_line(&body, stale),
            "{stale} reported as current:\n{body}"
        );
    }
    assert!(has_line(&body, "vigie_escalator_up 1"), "{body}");
    // The operator's log says why too.
    tower
        .events()
        .wait_n("scrape_served without referee", 1, LONG, |e| {
            e.name == "scrape_served" && e.fields["referee"] == Value::Bool(false)
        })?;

    // Back: the series come back with current values.
    let (_, body) = get(&url)?;
    assert!(has_line(&body, "vigie_referee_up 1"), "{body}");
    assert!(
        has_line(&body, r#"vigie_hosts{state="online"} 1"#),
        "{body}"
    );

    // Anything but GET /metrics gets a clear answer.
    let base = url.trim_end_matches("/metrics");
    let (code, body) = get(&format!("{base}/hosts/nowhere"))?;
    assert_eq!(code, 404);
    assert!(body.contains("/metrics"), "{body}");
    Ok(())
}

#[test]
fn a_metrics_endpoint_that_is_not_http_ip_port_is_refused() -> anyhow::Result<()> {
    for bad in [
        "tcp://127.0.0.1:9464",
        "http://tower.example:9464",
        "http://127.0.0.1",
    ] {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("tower.yml");
        std::fs::write(
            &file,
            format!("name: t\ndata_dir: data\nendpoints:\n  metrics: {bad}\n"),
        )?;
        let f = file.display().to_string();
        let mut d = vigie_tests::Daemon::spawn(&["start", "--setup", f.as_str()])?;
        let status = d.wait_exit(LONG)?;
        let err = d.stderr();
        assert_eq!(status.code(), Some(64), "{bad}: {err}");
        assert!(
            err.contains("endpoints.metrics") && err.contains(bad),
            "{err}"
        );
        assert_eq!(d.events.count("child_started"), 0);
    }
    Ok(())
}
