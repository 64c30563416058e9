//! An agent whose tower changed its key (its data dir made anew) keeps
//! knocking, since the tower may come back as it was, but with a doubling,
//! jittered wait: not several handshakes a second for ever.

use std::time::Duration;

use vigie_tests::{is_running, Daemon, Launcher, Setup};

const WAIT: Duration = Duration::from_secs(30);

fn public_key(t: &Launcher) -> anyhow::Result<String> {
    Ok(
        std::fs::read_to_string(t.data_dir().join("keys/tower.public"))?
            .trim()
            .to_owned(),
    )
}

#[test]
fn an_agent_refused_by_a_tower_whose_key_changed_backs_off() -> anyhow::Result<()> {
    // Both towers answer at the same door: the second is the first with
    // its data dir made anew (a new key pair).
    let door = tempfile::tempdir()?;
    let endpoint = format!("ipc://{}/door.sock", door.path().display());
    let mut first = Launcher::start(Setup::new("before").majordomo(&endpoint))?;
    let key = first.dir.path().join("far-1.key");
    let public = vigie_majordomo::keys::write_new(&key)?.public_z85();
    let out = first.cli(&["hosts", "add", "far-1", "--key", &public])?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    let tower_key = public_key(&first)?;
    let agent = Daemon::agent(
        &endpoint,
        &tower_key,
        &key,
        "far-1",
        &door.path().join("root"),
        &door.path().join("agent"),
    )?;
    agent.events.wait("agent_connected", WAIT)?;
    first.quit()?;
    let second = Launcher::start(Setup::new("after").majordomo(&endpoint))?;
    assert_ne!(public_key(&second)?, tower_key, "a new tower key");

    // Five refused handshakes in a row: without back-off they come about
    // 8 a second; with it, the waits between them add up to at least
    // half of 200 + 400 + 800 + 1600 ms.
    // Timed by the agent's own event stamps, not by when this test read
    // them: a loaded machine may hand the test several lines at once.
    let refusal = |n| {
        agent
            .events
            .wait_n("agent_refused", n, WAIT, |e| e.name == "agent_refused")
    };
    let (first, fifth) = (refusal(1)?, refusal(5)?);
    let stamp = |e: &vigie_tests::Event| -> anyhow::Result<std::time::SystemTime> {
        let t = e
            .str("timestamp")
            .ok_or_else(|| anyhow::anyhow!("no timestamp: {:?}", e.fields))?;
        Ok(humantime::parse_rfc3339_weak(t)?)
    };
    let span = stamp(&fifth)?.duration_since(stamp(&first)?)?.as_secs_f64();
    println!("5 refused handshakes in {span:.2}s");
    assert!(
        span >= 1.5,
        "5 handshakes in {span:.2}s: the agent does not back off"
    );
    assert!(
        agent.events.count("agent_backoff") >= 4,
        "each wait is logged"
    );
    assert!(
        is_running(agent.pid()),
        "it keeps knocking: the tower may come back with its old key"
    );
    drop(second);
    Ok(())
}
