//! The launcher with real child processes: ordered start, restart after
//! SIGKILL with the tower still working, the front door never given up
//! (see `tower_health.rs` for plugs and the provisioner), bad setup files (and internal endpoints
//! others could reach) refused before anything starts, one launcher per
//! data dir.

use std::time::Duration;

use vigie_tests::{Daemon, Launcher, Rule, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const WAIT: Duration = Duration::from_secs(30);

fn spec(yaml: &str) -> vigie_wire::change::ChangeSpec {
    vigie_changes::parse_change("t.yml", yaml).expect("change")
}

/// Submits a one-step change to `target` (one host) and waits for its end.
fn run_one(tower: &Launcher, target: &str) -> anyhow::Result<ChangeState> {
    let c = tower.api()?.changes(ApiCall::Submit {
        spec: spec("title: t\nsteps:\n  - run: \"true\"\n"),
        target: target.into(),
    })?;
    Ok(tower.wait_final(&[c[0].id.clone()], WAIT)?[0].state)
}

#[test]
fn children_start_in_order_and_rules_label_hosts() -> anyhow::Result<()> {
    let setup = Setup::new("order")
        .host("web-1", &[("role", "web")])
        .host("db-1", &[])
        .rule(Rule::new("web-*").label("tier", "front"));
    let tower = Launcher::start(setup)?;
    let names: Vec<String> = tower
        .events()
        .snapshot()
        .iter()
        .filter(|e| {
            [
                "escalator_started",
                "referee_started",
                "plug_started",
                "tower_ready",
            ]
            .contains(&e.name.as_str())
        })
        .map(|e| e.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "escalator_started",
            "referee_started",
            "plug_started",
            "plug_started",
            "tower_ready"
        ]
    );
    // The rule's label reached the host: a label target finds it.
    let v = tower.api()?.changes(ApiCall::Submit {
        spec: spec("title: t\nsteps:\n  - run: \"true\"\n"),
        target: "tier=front".into(),
    })?;
    assert_eq!(
        v.iter().map(|c| c.host.as_str()).collect::<Vec<_>>(),
        ["web-1"]
    );
    tower.until_step_succeeded("web-1", 1, WAIT)?;
    let finished = tower.until_changes_finished(1, WAIT)?;
    assert_eq!(
        (finished.str("host"), finished.str("state")),
        (Some("web-1"), Some("succeeded"))
    );
    // First start made the tower's keys in the data dir.
    assert!(tower.data_dir().join("keys/tower.public").is_file());
    Ok(())
}

#[test]
fn killed_children_are_restarted_and_a_change_submitted_before_completes() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("restart").host("web-1", &[]))?;
    let slow =
        "title: slow\nsteps:\n  - run: sleep 1; echo one >> trace\n  - run: echo two >> trace\n";
    let c = tower.api()?.changes(ApiCall::Submit {
        spec: spec(slow),
        target: "web-1".into(),
    })?;
    tower.events().wait("step_started", WAIT)?;
    tower.kill_child("referee")?;
    tower.kill_child("escalator")?;
    tower.wait_from("launcher", "child_restarted", 2, WAIT)?;
    let exited = tower
        .events()
        .snapshot()
        .into_iter()
        .filter(|e| e.name == "child_exited")
        .count();
    assert_eq!(exited, 2);
    let done = tower.wait_final(&[c[0].id.clone()], WAIT)?;
    assert_eq!(done[0].state, ChangeState::Succeeded);
    assert_eq!(
        std::fs::read_to_string(tower.root("web-1").join("trace"))?,
        "one\ntwo\n"
    );
    Ok(())
}

#[test]
fn the_front_door_is_never_given_up_and_comes_back_when_its_port_is_free() -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let setup = Setup::new("door")
        .host("web-1", &[])
        .majordomo(&format!("tcp://127.0.0.1:{port}"))
        .supervise("max_fast_crashes", "2")
        .supervise("backoff_initial", "500ms")
        .supervise("backoff_max", "1s");
    let tower = Launcher::start(setup)?;
    let exits = |n: usize| {
        tower
            .events()
            .wait_n("child_exited majordomo", n, WAIT, |e| {
                e.name == "child_exited" && e.str("name") == Some("majordomo")
            })
    };
    // The majordomo dies, and another process takes its port meanwhile:
    // every restart fails to bind.
    nix::sys::signal::kill(
        tower.child_pid("majordomo")?,
        nix::sys::signal::Signal::SIGKILL,
    )?;
    exits(1)?;
    let squatter = std::net::TcpListener::bind(("127.0.0.1", port))?;
    let ceiling = tower.wait_from("launcher", "child_backoff_ceiling", 1, WAIT)?;
    assert_eq!(ceiling.str("name"), Some("majordomo"));
    assert_eq!(ceiling.u64("backoff_ms"), Some(1_000));
    // Well past max_fast_crashes, and still tried again at the ceiling.
    exits(4)?;
    assert_eq!(tower.events().count("child_gave_up"), 0);
    // The port comes free: the front door is back, the launcher never
    // restarted, and the operator's CLI works again.
    drop(squatter);
    tower.wait_from("majordomo", "majordomo_started", 2, WAIT)?;
    let out = tower.cli(&["hosts"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("web-1"));
    assert_eq!(tower.events().count("launcher_started"), 1);
    Ok(())
}

#[test]
fn lifecycle_events_are_published_on_the_lifecycle_socket() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("pub").host("web-1", &[]))?;
    let ctx = zmq::Context::new();
    let sub = ctx.socket(zmq::SUB)?;
    sub.set_subscribe(b"change_finished")?;
    sub.set_rcvtimeo(500)?;
    sub.connect(&tower.endpoint("lifecycle"))?;
    // A subscription takes effect a moment after connecting: submit until
    // one change_finished arrives on the socket.
    let mut api = tower.api()?;
    for _ in 0..40 {
        api.changes(ApiCall::Submit {
            spec: spec("title: t\nsteps:\n  - run: \"true\"\n"),
            target: "web-1".into(),
        })?;
        if let Ok(parts) = sub.recv_multipart(0) {
            let ev: vigie_wire::lifecycle::LifecycleEvent = vigie_wire::decode(&parts[1])?;
            assert_eq!(
                (ev.source.as_str(), ev.name.as_str()),
                ("referee", "change_finished")
            );
            let fields: serde_json::Value = serde_json::from_str(&ev.fields_json)?;
            assert_eq!(fields["host"], "web-1");
            return Ok(());
        }
    }
    anyhow::bail!("no lifecycle event arrived on the socket")
}

fn refused(yaml: &str, expect: &[&str]) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir_all(dir.path().join("web-1"))?;
    let file = dir.path().join("tower.yml");
    std::fs::write(&file, yaml)?;
    let f = file.display().to_string();
    let mut d = Daemon::spawn(&["start", "--setup", f.as_str()])?;
    let status = d.wait_exit(WAIT)?;
    let err = d.stderr();
    assert_eq!(status.code(), Some(64), "{yaml}\n{err}");
    for part in expect {
        assert!(err.contains(part), "the error should name {part:?}: {err}");
    }
    assert!(!dir.path().join("data").exists(), "nothing created");
    assert_eq!(d.events.count("child_started"), 0, "nothing started");
    Ok(())
}

#[test]
fn bad_setup_files_exit_64_before_anything_starts() -> anyhow::Result<()> {
    let head = "name: t\ndata_dir: data\n";
    refused(&format!("{head}colour: blue\n"), &["tower.yml", "colour"])?;
    refused(
        &format!("{head}hosts:\n  - id: web-1\n    driver: local\n    options: {{root: web-1}}\n    labels: [a, b]\n"),
        &["tower.yml", "labels"],
    )?;
    refused(
        &format!(
            "{head}hosts:\n  - id: web-1\n    driver: local\n    options: {{root: [web-1]}}\n"
        ),
        &["tower.yml", "web-1", "root", "expected a path"],
    )?;
    refused(
        &format!("{head}hosts:\n  - id: web-1\n    driver: local\n"),
        &["tower.yml", "web-1", "root", "required"],
    )?;
    refused(
        &format!(
            "{head}hosts:\n  - id: web-1\n    driver: local\n    options: {{root: nowhere}}\n"
        ),
        &["tower.yml", "web-1", "root", "not an existing directory"],
    )?;
    refused(
        &format!("{head}hosts:\n  - id: web-1\n    driver: local\n    options: {{root: web-1, colour: 3}}\n"),
        &["tower.yml", "web-1", "colour", "unknown"],
    )?;
    refused(
        &format!(
            "{head}hosts:\n  - {{id: web-1, driver: noop}}\n  - {{id: web-1, driver: noop}}\n"
        ),
        &["tower.yml", "duplicate", "web-1"],
    )?;
    refused(
        &format!("{head}hosts:\n  - {{id: web-1, driver: ssh}}\n"),
        &["tower.yml", "web-1", "ssh"],
    )?;
    Ok(())
}

#[test]
fn a_second_launcher_on_the_same_data_dir_is_refused() -> anyhow::Result<()> {
    let tower = Launcher::start(Setup::new("one").host("web-1", &[]))?;
    let f = tower.file.display().to_string();
    let mut second = Daemon::spawn(&["start", "--setup", f.as_str()])?;
    let status = second.wait_exit(WAIT)?;
    assert_eq!(status.code(), Some(1), "{}", second.stderr());
    assert!(
        second.stderr().contains("launcher.lock"),
        "{}",
        second.stderr()
    );
    assert_eq!(second.events.count("child_started"), 0);
    // The first tower is untouched.
    assert_eq!(run_one(&tower, "web-1")?, ChangeState::Succeeded);
    Ok(())
}

#[test]
fn internal_endpoints_off_the_private_data_dir_are_refused() -> anyhow::Result<()> {
    let head = "name: t\ndata_dir: data\n";
    // Anyone on the network could add an operator, read every order...
    refused(
        &format!("{head}endpoints:\n  api: tcp://0.0.0.0:17101\n"),
        &[
            "tower.yml",
            "endpoints.api",
            "tcp://0.0.0.0:17101",
            "ipc://",
        ],
    )?;
    refused(
        &format!("{head}endpoints:\n  escalator: tcp://0.0.0.0:17100\n"),
        &["tower.yml", "endpoints.escalator", "tcp://0.0.0.0:17100"],
    )?;
    // ...and on loopback, any user of the machine could.
    refused(
        &format!("{head}endpoints:\n  orders: tcp://127.0.0.1:17103\n"),
        &[
            "tower.yml",
            "endpoints.orders",
            "every user of this machine",
        ],
    )?;
    refused(
        &format!("{head}endpoints:\n  events: ipc://@vigie-events\n"),
        &["tower.yml", "endpoints.events", "abstract"],
    )?;
    // A data dir so deep its default sockets cannot be bound.
    let deep = "d".repeat(100);
    refused(
        &format!("name: t\ndata_dir: {deep}\n"),
        &["tower.yml", "endpoints.escalator", "107-byte limit", &deep],
    )?;
    Ok(())
}
