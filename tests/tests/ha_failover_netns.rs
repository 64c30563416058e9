//! Two towers of one HA group on machines of their own (network
//! namespaces on one switch), three etcd members on three more, three
//! agents on three others given both front doors. Changes flow to every
//! agent; the active tower's machine dies (cut off the switch, its
//! processes SIGKILLed) mid-flow — or, separately, is cut off from etcd
//! only, still running and reached by its agents. The standby takes over
//! once the lease expires (a cut-off active steps down by itself); every agent comes back online through it;
//! every change the active acknowledged finishes, and those queued after
//! the failover too, each run exactly once; the audit chain verifies
//! across the failover. Skipped, saying so, where namespaces cannot be
//! made (not root); CI runs as root.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use vigie_escalator::engine::TxnLimits;
use vigie_escalator_tests::etcd_server::{EtcdServer, Member};
use vigie_tests::netns::{unavailable, Machines};
use vigie_tests::{Daemon, Event, Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const WAIT: Duration = Duration::from_secs(90);
const DOORS: &str = "tcp://192.0.2.31:7110,tcp://192.0.2.32:7110";
/// Changes per agent before the failover, and after it.
const BEFORE: usize = 4;

fn stamp(e: &Event) -> anyhow::Result<SystemTime> {
    let t = e
        .str("timestamp")
        .ok_or_else(|| anyhow::anyhow!("no timestamp: {:?}", e.fields))?;
    Ok(humantime::parse_rfc3339_weak(t)?)
}

fn online(t: &Launcher, host: &str) -> anyhow::Result<Event> {
    t.events()
        .wait_n(&format!("host_online {host}"), 1, WAIT, |e| {
            e.name == "host_online" && e.str("host") == Some(host)
        })
}

/// Submits a change to `host` that appends `token` to its `runs` file.
fn submit(t: &Launcher, host: &str, runs: &std::path::Path, token: &str) -> anyhow::Result<String> {
    let spec = vigie_changes::parse_change(
        "c.yml",
        &format!(
            "title: {token}\nsteps:\n  - run: \"echo {token} >> {}; sleep 0.3\"\n",
            runs.display()
        ),
    )?;
    let c = t.api()?.changes(ApiCall::Submit {
        spec,
        target: host.into(),
    })?;
    Ok(c[0].id.clone())
}

/// The machines, the etcd cluster, both towers (`a` active) and the
/// agents, online at `a`, with `BEFORE` changes each acknowledged by it
/// and the first of them finished.
struct Group {
    m: Machines,
    lan: String,
    port_a: String,
    _etcd: Vec<EtcdServer>,
    a: Launcher,
    b: Launcher,
    agents: Vec<Daemon>,
    runs: BTreeMap<String, PathBuf>,
    /// The changes acknowledged by `a`, and each host's tokens in order.
    ids: Vec<String>,
    want: BTreeMap<String, Vec<String>>,
    tmp: tempfile::TempDir,
}

fn etcd_cluster(
    m: &mut Machines,
    lan: &str,
    dir: &std::path::Path,
) -> anyhow::Result<Vec<EtcdServer>> {
    let mut members = Vec::new();
    for i in 0..3u8 {
        let ns = m.add(&format!("e{i}"))?;
        let ip = format!("192.0.2.{}", 21 + i);
        m.plug_in(lan, &ns, &format!("{ip}/24"), &format!("e{i}"))?;
        members.push(Member {
            name: format!("e{i}"),
            netns: ns,
            ip,
        });
    }
    let limits = TxnLimits {
        ops: 10_000,
        bytes: 8 << 20,
    };
    EtcdServer::cluster(dir, &members, limits).map_err(anyhow::Error::msg)
}

/// Starts an agent for `host` on a machine of its own, enrolled at `a`.
fn agent(g: &mut Group, i: u8, tower_key: &str) -> anyhow::Result<()> {
    let host = format!("far-{i}");
    let ns = g.m.add(&format!("h{i}"))?;
    g.m.plug_in(
        &g.lan,
        &ns,
        &format!("192.0.2.{}/24", 41 + i),
        &format!("h{i}"),
    )?;
    let key = g.tmp.path().join(format!("{host}.key"));
    let public = vigie_majordomo::keys::write_new(&key)?.public_z85();
    let out = g.a.cli(&["hosts", "add", &host, "--key", &public])?;
    anyhow::ensure!(out.status.success(), "{out:?}");
    let root = g.tmp.path().join("roots").join(&host);
    std::fs::create_dir_all(&root)?;
    let state = g.tmp.path().join("agents").join(&host);
    let args = [
        "agent".to_owned(),
        "--tower".into(),
        DOORS.into(),
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
    g.agents.push(Daemon::spawn_in(Some(&ns), &args)?);
    online(&g.a, &host)?;
    g.runs.insert(host, root.join("runs"));
    Ok(())
}

fn group() -> anyhow::Result<Group> {
    let tmp = tempfile::tempdir()?;
    let mut m = Machines::new();
    let lan = m.add("lan")?;
    let etcd = etcd_cluster(&mut m, &lan, &tmp.path().join("etcd"))?;
    let eps: Vec<String> = etcd.iter().map(EtcdServer::endpoint).collect();
    let setup = |name: &str| {
        Setup::new("group").majordomo("tcp://0.0.0.0:7110").raw(&format!(
            "ha:\n  etcd: [{}]\n  tower: {name}\n  lease_ttl: 2s\n  max_txn_ops: 10000\n  max_request_bytes: 8388608\n",
            eps.join(", ")
        ))
    };
    let ta = m.add("ta")?;
    let port_a = m.plug_in(&lan, &ta, "192.0.2.31/24", "ta")?;
    let tb = m.add("tb")?;
    m.plug_in(&lan, &tb, "192.0.2.32/24", "tb")?;
    let a = Launcher::start_in_netns(setup("a"), &ta)?;
    let b = Launcher::start_standby(setup("b"), &a.data_dir().join("keys"), Some(&tb))?;
    let tower_key = std::fs::read_to_string(a.data_dir().join("keys/tower.public"))?;
    let mut g = Group {
        m,
        lan,
        port_a,
        _etcd: etcd,
        a,
        b,
        agents: Vec::new(),
        runs: BTreeMap::new(),
        ids: Vec::new(),
        want: BTreeMap::new(),
        tmp,
    };
    for i in 0..3u8 {
        agent(&mut g, i, &tower_key)?;
    }
    // Changes flowing to every agent: acknowledged by the active.
    for n in 0..BEFORE {
        for (host, file) in &g.runs {
            let token = format!("{host}-before-{n}");
            g.ids.push(submit(&g.a, host, file, &token)?);
            g.want.entry(host.clone()).or_default().push(token);
        }
    }
    g.a.events().wait("change_finished", WAIT)?;
    Ok(g)
}

/// After the active is gone at `lost`: the standby takes over, every agent
/// comes back, every change runs once, the audit chain verifies.
fn takes_over(mut g: Group, lost: SystemTime, what: &str) -> anyhow::Result<()> {
    let b = &g.b;
    let elected = b.events().wait("tower_elected", WAIT)?;
    b.events().wait("tower_ready", WAIT)?;
    let mut back = Vec::new();
    for host in g.runs.keys() {
        back.push(stamp(&online(b, host)?)?);
    }
    let all_online = back.iter().max().copied().unwrap_or(lost);
    let before = g.ids.clone();
    let mut after = Vec::new();
    for (host, file) in &g.runs {
        let token = format!("{host}-after");
        after.push(submit(b, host, file, &token)?);
        g.want.entry(host.clone()).or_default().push(token);
    }
    g.ids.extend(after.iter().cloned());
    let done = b.wait_final(&g.ids, WAIT)?;
    let failed: Vec<_> = done
        .iter()
        .filter(|c| c.state != ChangeState::Succeeded)
        .collect();
    assert!(failed.is_empty(), "not succeeded: {failed:#?}");
    let mut first_after = None;
    for id in &after {
        let e = b
            .events()
            .wait_n(&format!("change_finished {id}"), 1, WAIT, |e| {
                e.name == "change_finished" && e.str("change") == Some(id.as_str())
            })?;
        let t = stamp(&e)?;
        first_after = Some(first_after.map_or(t, |f: SystemTime| f.min(t)));
    }
    // The failover happened mid-flow: the standby finished some of what
    // the active had acknowledged.
    let carried = b
        .events()
        .snapshot()
        .iter()
        .filter(|e| {
            e.name == "change_finished"
                && e.str("change")
                    .is_some_and(|c| before.iter().any(|b| b == c))
        })
        .count();
    assert!(carried > 0, "every change had finished before the failover");
    println!(
        "{what}: {carried} of {} acknowledged changes finished by the standby; elected {:.2}s, \
         every agent online {:.2}s, a change queued after it finished {:.2}s after",
        before.len(),
        stamp(&elected)?.duration_since(lost)?.as_secs_f64(),
        all_online.duration_since(lost)?.as_secs_f64(),
        first_after
            .unwrap_or(lost)
            .duration_since(lost)?
            .as_secs_f64(),
    );
    // 0 acknowledged changes lost, 0 run twice, in each host's order.
    for (host, file) in &g.runs {
        let ran: Vec<String> = std::fs::read_to_string(file)?
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(&ran, &g.want[host], "{host}: each change once, in order");
    }
    let verify = b.cli(&["audit", "verify"])?;
    assert!(
        verify.status.success(),
        "the audit chain verifies across the failover: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    Ok(())
}

#[test]
fn the_standby_tower_takes_over_when_the_active_machine_dies() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return Ok(());
    }
    let mut g = group()?;
    // The active's machine dies: off the switch, its processes killed.
    let killed = SystemTime::now();
    g.m.set_link(&g.lan, &g.port_a, false)?;
    g.a.kill()?;
    takes_over(g, killed, "machine killed")
}

#[test]
fn an_active_cut_off_from_etcd_steps_down_and_the_standby_takes_over() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return Ok(());
    }
    let mut g = group()?;
    // Partitioned from every etcd member, still running and still reached
    // by its agents: it cannot renew its lease.
    let cut = SystemTime::now();
    for i in 0..3 {
        let member = format!("192.0.2.{}/32", 21 + i);
        g.m.ip_in(
            g.a.netns().unwrap_or_default(),
            &["route", "add", "blackhole", &member],
        )?;
    }
    let deposed = g.a.events().wait("tower_deposed", WAIT)?;
    let status = g.a.daemon.wait_exit(WAIT)?;
    assert!(
        !status.success(),
        "a deposed tower exits unclean: {status:?}"
    );
    println!(
        "cut off from etcd: the active stepped down {:.2}s after the cut",
        stamp(&deposed)?.duration_since(cut)?.as_secs_f64()
    );
    takes_over(g, cut, "cut off from etcd")
}
