//! The tower and three agents on four machines (network namespaces joined
//! by veth pairs): changes run on all three; one agent's link is cut, a
//! change is submitted for it, the link comes back, the change completes.
//! Skipped, saying so, where namespaces cannot be made (not root); CI runs
//! as root.

use std::time::Duration;

use vigie_tests::netns::{unavailable, Machines};
use vigie_tests::{Daemon, Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const WAIT: Duration = Duration::from_secs(60);
const PORT: u16 = 7110;

#[test]
fn agents_on_other_machines_run_changes_and_ride_out_a_network_cut() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return Ok(());
    }
    let mut m = Machines::new();
    let tower_ns = m.add("tower")?;
    let mut agents = Vec::new();
    for i in 0..3u8 {
        let ns = m.add(&format!("a{i}"))?;
        // One /30 per agent: tower .4i+1, agent .4i+2.
        let (t, a) = (4 * i + 1, 4 * i + 2);
        let iface = m.link(
            &tower_ns,
            &format!("192.0.2.{t}/30"),
            &ns,
            &format!("192.0.2.{a}/30"),
            &format!("{i}"),
        )?;
        agents.push((format!("far-{i}"), ns, iface, format!("192.0.2.{t}")));
    }
    let setup = Setup::new("netns").majordomo(&format!("tcp://0.0.0.0:{PORT}"));
    let tower = Launcher::start_in_netns(setup, &tower_ns)?;
    let tower_key = std::fs::read_to_string(tower.data_dir().join("keys/tower.public"))?;
    let mut daemons = Vec::new();
    for (host, ns, _, addr) in &agents {
        let key = tower.dir.path().join(format!("{host}.key"));
        let out = std::process::Command::new(vigie_tests::vigie_bin())
            .args(["keys", "gen", "--out"])
            .arg(&key)
            .output()?;
        let public = String::from_utf8(out.stdout)?.trim().to_owned();
        let added = tower.cli(&["hosts", "add", host, "--key", &public])?;
        anyhow::ensure!(
            added.status.success(),
            "{}",
            String::from_utf8_lossy(&added.stderr)
        );
        let root = tower.root(host);
        std::fs::create_dir_all(&root)?;
        let state = tower.dir.path().join("agents").join(host);
        let args = [
            "agent".to_owned(),
            "--tower".into(),
            format!("tcp://{addr}:{PORT}"),
            "--tower-key".into(),
            tower_key.trim().into(),
            "--key".into(),
            key.display().to_string(),
            "--host".into(),
            host.clone(),
            "--root".into(),
            root.display().to_string(),
            "--state".into(),
            state.display().to_string(),
            "--heartbeat-ms".into(),
            "200".into(),
        ];
        let d = Daemon::spawn_in(Some(ns), &args)?;
        d.events.wait("agent_connected", WAIT)?;
        daemons.push(d);
    }
    let run = |target: &str, token: &str| -> anyhow::Result<Vec<String>> {
        let spec = vigie_changes::parse_change(
            "t.yml",
            &format!("title: t\nsteps:\n  - run: echo {token} >> trace\n"),
        )?;
        let v = tower.api()?.changes(ApiCall::Submit {
            spec,
            target: target.into(),
        })?;
        Ok(v.into_iter().map(|c| c.id).collect())
    };
    for (host, ..) in &agents {
        let what = format!("host_online {host}");
        tower.events().wait_n(&what, 1, WAIT, |e| {
            e.name == "host_online" && e.str("host") == Some(host)
        })?;
    }
    let first = run("far-*", "one")?;
    assert_eq!(first.len(), 3);
    let done = tower.wait_final(&first, WAIT)?;
    assert!(
        done.iter().all(|v| v.state == ChangeState::Succeeded),
        "{done:?}"
    );

    // Cut far-0's link: the referee sees it go offline.
    let (host, ns, iface, _) = &agents[0];
    m.set_link(ns, iface, false)?;
    tower.events().wait_n("host_offline far-0", 1, WAIT, |e| {
        e.name == "host_offline" && e.str("host") == Some(host)
    })?;
    let second = run(host, "two")?;
    let status = tower.api()?.changes(ApiCall::Status {
        change: Some(second[0].clone()),
        limit: 1,
    })?;
    assert_eq!(status[0].state, ChangeState::Queued, "waits for the host");
    m.set_link(ns, iface, true)?;
    let done = tower.wait_final(&second, WAIT)?;
    assert_eq!(done[0].state, ChangeState::Succeeded);
    assert_eq!(
        std::fs::read_to_string(tower.root(host).join("trace"))?,
        "one\ntwo\n"
    );
    drop(daemons);
    drop(tower);
    Ok(())
}
