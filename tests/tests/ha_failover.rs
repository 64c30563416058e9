//! Two towers of one HA group over a real etcd: the standby starts no
//! daemon while the active lives; the active's launcher is SIGKILLed (its
//! daemons die with it) while an agent, given both front doors, is
//! connected to it; the standby takes over once the lease expires, serves
//! everything the active acknowledged, the agent comes back online through
//! the new active's front door, and a change queued after the failover
//! runs there — once.

use std::path::Path;
use std::time::{Duration, SystemTime};

use vigie_escalator::engine::TxnLimits;
use vigie_escalator_tests::etcd_server::EtcdServer;
use vigie_tests::{Daemon, Event, Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const WAIT: Duration = Duration::from_secs(60);

fn stamp(e: &Event) -> anyhow::Result<SystemTime> {
    let t = e
        .str("timestamp")
        .ok_or_else(|| anyhow::anyhow!("no timestamp: {:?}", e.fields))?;
    Ok(humantime::parse_rfc3339_weak(t)?)
}

fn tower(name: &str, door: &str, etcd: &str) -> Setup {
    Setup::new("group").majordomo(door).raw(&format!(
        "ha:\n  etcd: [{etcd}]\n  tower: {name}\n  lease_ttl: 2s\n  max_txn_ops: 10000\n  max_request_bytes: 8388608\n"
    ))
}

fn submit(t: &Launcher, file: &Path, text: &str) -> anyhow::Result<String> {
    std::fs::write(file, text)?;
    let spec = vigie_changes::parse_change("c.yml", text)?;
    let c = t.api()?.changes(ApiCall::Submit {
        spec,
        target: "far-1".into(),
    })?;
    Ok(c[0].id.clone())
}

#[test]
fn the_standby_takes_over_when_the_active_tower_dies() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let limits = TxnLimits {
        ops: 10_000,
        bytes: 8 << 20,
    };
    let etcd =
        EtcdServer::start_with(&tmp.path().join("etcd"), limits).map_err(anyhow::Error::msg)?;
    let doors = [0, 1].map(|i| format!("ipc://{}/door-{i}.sock", tmp.path().display()));
    let mut a = Launcher::start(tower("a", &doors[0], &etcd.endpoint()))?;
    a.events().wait("tower_elected", WAIT)?;
    let b = Launcher::start_standby(
        tower("b", &doors[1], &etcd.endpoint()),
        &a.data_dir().join("keys"),
        None,
    )?;
    let standby = b.events().wait("tower_standby", WAIT)?;
    assert_eq!(standby.str("active"), Some("a"));
    assert_eq!(
        b.events().count("escalator_started"),
        0,
        "a standby runs no daemon"
    );

    // An agent that knows both front doors, online at the active.
    let key = tmp.path().join("far-1.key");
    let public = vigie_majordomo::keys::write_new(&key)?.public_z85();
    let out = a.cli(&["hosts", "add", "far-1", "--key", &public])?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    let tower_key = std::fs::read_to_string(a.data_dir().join("keys/tower.public"))?;
    let agent = Daemon::agent(
        &doors.join(","),
        &tower_key,
        &key,
        "far-1",
        &tmp.path().join("root"),
        &tmp.path().join("agent"),
    )?;
    a.events().wait_n("host_online far-1", 1, WAIT, |e| {
        e.name == "host_online" && e.str("host") == Some("far-1")
    })?;
    let marks = tmp.path().join("root").join("runs");
    let step = |n: u32| {
        format!(
            "title: c{n}\nsteps:\n  - run: \"echo {n} >> {}\"\n",
            marks.display()
        )
    };
    let before = submit(&a, &tmp.path().join("c1.yml"), &step(1))?;
    let done = a.wait_final(std::slice::from_ref(&before), WAIT)?;
    assert_eq!(done[0].state, ChangeState::Succeeded, "{done:?}");

    // The active's machine dies.
    let killed = SystemTime::now();
    a.kill()?;
    let elected = b.events().wait("tower_elected", WAIT)?;
    b.events().wait("tower_ready", WAIT)?;
    let online = b.events().wait_n("host_online far-1", 1, WAIT, |e| {
        e.name == "host_online" && e.str("host") == Some("far-1")
    })?;
    let after = submit(&b, &tmp.path().join("c2.yml"), &step(2))?;
    let done = b.wait_final(&[after.clone(), before.clone()], WAIT)?;
    assert!(
        done.iter().all(|c| c.state == ChangeState::Succeeded),
        "{done:?}"
    );
    let finished = b.events().wait_n("change_finished c2", 1, WAIT, |e| {
        e.name == "change_finished" && e.str("change") == Some(after.as_str())
    })?;
    println!(
        "failover: elected {:.2}s, agent online {:.2}s, queued change finished {:.2}s after the kill",
        stamp(&elected)?.duration_since(killed)?.as_secs_f64(),
        stamp(&online)?.duration_since(killed)?.as_secs_f64(),
        stamp(&finished)?.duration_since(killed)?.as_secs_f64(),
    );
    // Each change ran once, the one acknowledged before the kill included.
    assert_eq!(std::fs::read_to_string(&marks)?, "1\n2\n");
    drop(agent);
    Ok(())
}
