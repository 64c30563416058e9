//! The tower, three agents and an operator's laptop on five machines
//! (network namespaces joined by veth pairs). The admin, on the tower,
//! admits the agents and adds the operator; the operator, from the laptop,
//! with her own key, runs changes on all three; one agent's link is cut,
//! she submits a change for it, the link comes back, the change completes.
//! Skipped, saying so, where namespaces cannot be made (not root); CI runs
//! as root.

use std::process::{Command, Output};
use std::time::Duration;

use vigie_tests::netns::{unavailable, Machines};
use vigie_tests::{Daemon, Launcher, Setup};

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
    let laptop = m.add("op")?;
    m.link(&tower_ns, "192.0.2.13/30", &laptop, "192.0.2.14/30", "3")?;
    let setup = Setup::new("netns").majordomo(&format!("tcp://0.0.0.0:{PORT}"));
    let tower = Launcher::start_in_netns(setup, &tower_ns)?;
    let tower_key = std::fs::read_to_string(tower.data_dir().join("keys/tower.public"))?;
    let keygen = |name: &str| -> anyhow::Result<(String, String)> {
        let key = tower.dir.path().join(format!("{name}.key"));
        let out = Command::new(vigie_tests::vigie_bin())
            .args(["keys", "gen", "--out"])
            .arg(&key)
            .output()?;
        let public = String::from_utf8(out.stdout)?.trim().to_owned();
        Ok((key.display().to_string(), public))
    };
    let ok = |out: Output| -> anyhow::Result<String> {
        anyhow::ensure!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8(out.stdout)?)
    };
    // The admin, on the tower, adds alice; she works from the laptop.
    let (alice_key, alice_public) = keygen("alice")?;
    ok(tower.cli(&[
        "operators",
        "add",
        "alice",
        "--key",
        &alice_public,
        "--grant",
        "changes.submit@far-*",
        "--grant",
        "changes.read",
    ])?)?;
    let alice = |args: &[&str]| -> anyhow::Result<Output> {
        Ok(Command::new("ip")
            .args(["netns", "exec", &laptop])
            .arg(vigie_tests::vigie_bin())
            .args(args)
            .args(["--tower", &format!("tcp://192.0.2.13:{PORT}")])
            .args(["--tower-key", tower_key.trim(), "--identity", &alice_key])
            .env("XDG_CONFIG_HOME", tower.dir.path().join("laptop"))
            .env_remove("VIGIE_CONFIG")
            .output()?)
    };
    let change = tower.dir.path().join("t.yml");
    let mut daemons = Vec::new();
    for (host, ns, _, addr) in &agents {
        let (key, public) = keygen(host)?;
        ok(tower.cli(&["hosts", "add", host, "--key", &public])?)?;
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
            key,
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
    // Alice's submit, from the laptop: the final states with --wait, else
    // the queued changes.
    let submit =
        |target: &str, token: &str, wait: bool| -> anyhow::Result<Vec<serde_json::Value>> {
            std::fs::write(
                &change,
                format!("title: t\nsteps:\n  - run: echo {token} >> trace\n"),
            )?;
            let file = change.display().to_string();
            let mut args = vec!["submit", &file, "--target", target, "--json"];
            if wait {
                args.push("--wait");
            }
            let out = ok(alice(&args)?)?;
            let mut last = std::collections::BTreeMap::new();
            for line in out.lines() {
                let v: serde_json::Value = serde_json::from_str(line)?;
                last.insert(v["id"].as_str().unwrap_or_default().to_owned(), v);
            }
            Ok(last.into_values().collect())
        };
    for (host, ..) in &agents {
        let what = format!("host_online {host}");
        tower.events().wait_n(&what, 1, WAIT, |e| {
            e.name == "host_online" && e.str("host") == Some(host)
        })?;
    }
    let done = submit("far-*", "one", true)?;
    assert_eq!(done.len(), 3);
    assert!(done.iter().all(|v| v["state"] == "succeeded"), "{done:?}");
    // Her grants stop at far-*: the tower's own hosts are not hers.
    let refused = alice(&["hosts"])?;
    assert!(!refused.status.success(), "alice has no hosts.read");

    // Cut far-0's link: the referee sees it go offline.
    let (host, ns, iface, _) = &agents[0];
    m.set_link(ns, iface, false)?;
    tower.events().wait_n("host_offline far-0", 1, WAIT, |e| {
        e.name == "host_offline" && e.str("host") == Some(host)
    })?;
    let second = submit(host, "two", false)?;
    assert_eq!(second[0]["state"], "queued", "waits for the host");
    m.set_link(ns, iface, true)?;
    let second_id = second[0]["id"].as_str().unwrap_or_default();
    let watched = ok(alice(&["watch", second_id, "--json"])?)?;
    let last: serde_json::Value = serde_json::from_str(watched.lines().last().unwrap_or_default())?;
    assert_eq!(last["state"], "succeeded");
    assert_eq!(
        std::fs::read_to_string(tower.root(host).join("trace"))?,
        "one\ntwo\n"
    );
    drop(daemons);
    drop(tower);
    Ok(())
}
