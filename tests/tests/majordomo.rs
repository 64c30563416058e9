//! Remote agents through the majordomo, over CurveZMQ: an accepted key runs
//! changes; an unknown key never completes the handshake (recorded as
//! pending until an operator accepts it); a revoked key is cut off within a
//! second and refused after; a wrong tower key is reported clearly;
//! malformed frames from an authenticated peer get an error, not a crash.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use vigie_tests::{Daemon, Launcher, Setup};
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::tower::{ApiCall, ChangeState, PlugEvent};

const WAIT: Duration = Duration::from_secs(30);

fn keygen(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, String)> {
    let path = dir.join(format!("{name}.key"));
    let out = std::process::Command::new(vigie_tests::vigie_bin())
        .args(["keys", "gen", "--out"])
        .arg(&path)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "keys gen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((path, String::from_utf8(out.stdout)?.trim().to_owned()))
}

fn tower_key(t: &Launcher) -> anyhow::Result<String> {
    Ok(
        std::fs::read_to_string(t.data_dir().join("keys/tower.public"))?
            .trim()
            .to_owned(),
    )
}

fn agent(t: &Launcher, host: &str, key: &Path, tower_key: &str) -> anyhow::Result<Daemon> {
    let state = t.dir.path().join("agents").join(host);
    Daemon::agent(
        &t.endpoint("majordomo"),
        tower_key,
        key,
        host,
        &t.root(host),
        &state,
    )
}

fn ok(out: std::process::Output) -> anyhow::Result<()> {
    anyhow::ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

fn run_one(t: &Launcher, host: &str, token: &str) -> anyhow::Result<ChangeState> {
    let spec = vigie_changes::parse_change(
        "t.yml",
        &format!("title: t\nsteps:\n  - run: echo {token} >> trace\n"),
    )?;
    let c = t.api()?.changes(ApiCall::Submit {
        spec,
        target: host.into(),
    })?;
    Ok(t.wait_final(&[c[0].id.clone()], WAIT)?[0].state)
}

fn online(t: &Launcher, host: &str) -> anyhow::Result<()> {
    let what = format!("host_online {host}");
    t.events().wait_n(&what, 1, WAIT, |e| {
        e.name == "host_online" && e.str("host") == Some(host)
    })?;
    Ok(())
}

#[test]
fn an_accepted_agent_runs_changes_and_a_revoked_one_is_cut_within_a_second() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("remote"))?;
    let (key, public) = keygen(t.dir.path(), "far-1")?;
    ok(t.cli(&["hosts", "add", "far-1", "--key", &public])?)?;
    let mut a = agent(&t, "far-1", &key, &tower_key(&t)?)?;
    a.events.wait("agent_connected", WAIT)?;
    online(&t, "far-1")?;
    assert_eq!(run_one(&t, "far-1", "hello")?, ChangeState::Succeeded);
    assert_eq!(
        std::fs::read_to_string(t.root("far-1").join("trace"))?,
        "hello\n"
    );

    let before = Instant::now();
    ok(t.cli(&["hosts", "revoke", "far-1"])?)?;
    a.events.wait("agent_revoked", Duration::from_secs(1))?;
    assert!(
        before.elapsed() < Duration::from_secs(1),
        "cut after {:?}",
        before.elapsed()
    );
    assert_eq!(a.wait_exit(WAIT)?.code(), Some(3));
    assert!(a.stderr().contains("revoked"), "{}", a.stderr());

    // Its queue stays; the same key is refused at the door from now on.
    let spec =
        vigie_changes::parse_change("t.yml", "title: t\nsteps:\n  - run: echo late >> trace\n")?;
    let queued = t.api()?.changes(ApiCall::Submit {
        spec,
        target: "far-1".into(),
    })?;
    let again = agent(&t, "far-1", &key, &tower_key(&t)?)?;
    again.events.wait("agent_refused", WAIT)?;
    let status = t.api()?.changes(ApiCall::Status {
        change: Some(queued[0].id.clone()),
        limit: 1,
    })?;
    assert_eq!(
        status[0].state,
        ChangeState::Queued,
        "queued work stays queued"
    );
    assert_eq!(again.events.count("agent_connected"), 0);
    Ok(())
}

#[test]
fn an_unknown_key_never_gets_in_until_an_operator_accepts_it() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("pending"))?;
    let (key, public) = keygen(t.dir.path(), "far-2")?;
    let a = agent(&t, "far-2", &key, &tower_key(&t)?)?;
    let refused = |e: &vigie_tests::Event| {
        e.name == "handshake_refused" && e.str("public") == Some(public.as_str())
    };
    t.events().wait_n("handshake_refused", 1, WAIT, refused)?;
    a.events.wait("agent_refused", WAIT)?;
    // Knocks reach the referee in batches, audited as one record each.
    let pending = |e: &vigie_tests::Event| e.name == "keys_pending";
    t.events().wait_n("keys_pending", 1, WAIT, pending)?;
    // Recorded as pending, with its key and where it knocked from.
    let pending = t.cli(&["hosts", "pending", "--json"])?;
    let text = String::from_utf8(pending.stdout)?;
    assert!(
        text.contains("\"pending\"") && text.contains(&public),
        "{text}"
    );
    // Nothing it sent reached the referee.
    let reached = t
        .events()
        .snapshot()
        .into_iter()
        .filter(|e| e.str("source") == Some("referee") && e.str("host") == Some("far-2"))
        .count();
    assert_eq!(reached, 0, "the referee heard of far-2");
    assert_eq!(a.events.count("agent_connected"), 0);

    ok(t.cli(&["hosts", "accept", "far-2", "--key", &public])?)?;
    a.events.wait("agent_connected", WAIT)?;
    online(&t, "far-2")?;
    assert_eq!(run_one(&t, "far-2", "admitted")?, ChangeState::Succeeded);
    Ok(())
}

#[test]
fn a_wrong_tower_key_is_reported_clearly() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("wrongkey"))?;
    let (key, public) = keygen(t.dir.path(), "far-3")?;
    ok(t.cli(&["hosts", "add", "far-3", "--key", &public])?)?;
    let (_, not_the_tower) = keygen(t.dir.path(), "impostor")?;
    let mut a = agent(&t, "far-3", &key, &not_the_tower)?;
    let status = a.wait_exit(WAIT)?;
    assert_eq!(status.code(), Some(3), "{}", a.stderr());
    assert!(a.stderr().contains("--tower-key"), "{}", a.stderr());
    Ok(())
}

#[test]
fn malformed_or_foreign_frames_from_an_accepted_peer_are_refused() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("frames"))?;
    let (key, public) = keygen(t.dir.path(), "far-4")?;
    ok(t.cli(&["hosts", "add", "far-4", "--key", &public])?)?;
    let pair = vigie_majordomo::keys::read_secret(&key)?;
    let server = vigie_majordomo::keys::from_z85(&tower_key(&t)?).expect("tower key");
    let ctx = zmq::Context::new();
    let d = ctx.socket(zmq::DEALER)?;
    d.set_curve_serverkey(&server)?;
    d.set_curve_publickey(&pair.public)?;
    d.set_curve_secretkey(&pair.secret)?;
    d.set_rcvtimeo(10_000)?;
    d.connect(&t.endpoint("majordomo"))?;
    let refused = |d: &zmq::Socket| -> anyhow::Result<String> {
        loop {
            match vigie_wire::decode::<FrontOut>(&d.recv_bytes(0)?)? {
                FrontOut::Refused { reason } => return Ok(reason),
                FrontOut::Ping => continue,
                other => anyhow::bail!("unexpected {other:?}"),
            }
        }
    };
    d.send(&b"garbage"[..], 0)?;
    assert!(!refused(&d)?.is_empty());
    let foreign = FrontIn::Plug(PlugEvent::Heartbeat {
        host: "someone-else".into(),
        incarnation: 1,
        labels: Default::default(),
        busy: None,
        refusing: None,
    });
    d.send(vigie_wire::encode(&foreign)?, 0)?;
    assert!(refused(&d)?.contains("far-4"));
    // Host metrics and logs answers too: an agent speaks for its host only.
    let lying = FrontIn::Plug(PlugEvent::HostMetrics(vigie_wire::observe::HostSample {
        host: "someone-else".into(),
        ..Default::default()
    }));
    d.send(vigie_wire::encode(&lying)?, 0)?;
    assert!(refused(&d)?.contains("not someone-else"));
    let lying = FrontIn::Plug(PlugEvent::Logs(vigie_wire::observe::LogsChunk {
        host: "someone-else".into(),
        request: 1,
        body: Ok(Default::default()),
    }));
    d.send(vigie_wire::encode(&lying)?, 0)?;
    assert!(refused(&d)?.contains("not someone-else"));
    d.send_multipart([&b"two"[..], b"frames"], 0)?;
    // The door is still open for the real agent.
    let a = agent(&t, "far-4", &key, &tower_key(&t)?)?;
    if let Err(e) = a.events.wait("agent_connected", WAIT) {
        anyhow::bail!("{e}; agent stderr: {}", a.stderr());
    }
    online(&t, "far-4")?;
    assert_eq!(run_one(&t, "far-4", "still")?, ChangeState::Succeeded);
    assert_eq!(t.events().count("child_exited"), 0, "no daemon crashed");
    Ok(())
}
