//! The tower's own health, with real child processes: a plug and the
//! provisioner that crash at every start are never given up — the
//! launcher keeps trying them with growing delays and says so —,
//! `vigie tower status` shows each daemon's state, restarts and last exit
//! (a plug only to those who may read its host), `vigie hosts` says why a
//! plug's host is offline, a provisioning request is refused while the
//! provisioner is down, and once the cause is gone each comes back and
//! works without a restart of the tower; a restarted referee knows every
//! daemon's state at once.

use std::time::Duration;

use vigie_tests::front::{add_operator, client_with, fault, grants};
use vigie_tests::{Event, Launcher, Setup};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind};

const WAIT: Duration = Duration::from_secs(60);
/// More fast crashes than the five after which a plug, the provisioner
/// or the metrics daemon used to be given up for good.
const CRASHES: usize = 8;

/// Back-offs of 50 ms doubling, so that the last crash's (6.4 s) leaves
/// the test time to look at a child that is backing off.
fn setup(name: &str) -> Setup {
    Setup::new(name)
        .host("web-1", &[])
        .host("web-2", &[])
        .supervise("backoff_initial", "50ms")
        .supervise("backoff_max", "1m")
}

use vigie_tests::stdout_ok as ok;

/// Waits for the `CRASHES`-th `child_backoff` of `child`; returns every
/// one of them, in order.
fn crash_loop(tower: &Launcher, child: &str) -> anyhow::Result<Vec<Event>> {
    let of = |e: &Event| e.name == "child_backoff" && e.str("name") == Some(child);
    tower
        .events()
        .wait_n(&format!("child_backoff {child}"), CRASHES, WAIT, of)?;
    Ok(tower.events().snapshot().into_iter().filter(of).collect())
}

/// The back-offs double with each crash, and the launcher gives up none.
fn assert_growing(backoffs: &[Event], status: &str) {
    let delays: Vec<u64> = backoffs
        .iter()
        .filter_map(|e| e.u64("backoff_ms"))
        .collect();
    assert_eq!(
        delays[..CRASHES],
        [50, 100, 200, 400, 800, 1_600, 3_200, 6_400],
        "{backoffs:?}"
    );
    for e in &backoffs[1..] {
        assert!(
            e.str("status").is_some_and(|s| s.starts_with(status)),
            "{e:?}"
        );
    }
}

/// `vigie tower status --json`: the line of `name`, if shown.
fn daemon(tower: &Launcher, name: &str) -> anyhow::Result<Option<serde_json::Value>> {
    let text = ok(tower.cli(&["tower", "status", "--json"])?)?;
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if v["name"] == name {
            return Ok(Some(v));
        }
    }
    Ok(None)
}

/// The metrics daemon's page, with the tower's bearer token.
fn scrape(tower: &Launcher) -> anyhow::Result<String> {
    let started = tower.wait_from("metrics", "metrics_started", 1, WAIT)?;
    let url = format!("{}/metrics", started.str("address").unwrap_or_default());
    let token = std::fs::read_to_string(tower.data_dir().join("keys/metrics.token"))?;
    Ok(ureq::get(&url)
        .set("Authorization", &format!("Bearer {}", token.trim()))
        .call()?
        .into_string()?)
}

#[test]
fn a_crash_looping_plug_is_never_given_up_and_its_host_says_why_it_is_offline() -> anyhow::Result<()>
{
    let tower = Launcher::start(setup("plugloop"))?;
    // web-2's root disappears: its plug now exits at once on every start.
    let root = tower.root("web-2");
    std::fs::remove_dir_all(&root)?;
    nix::sys::signal::kill(
        tower.child_pid("plug:web-2")?,
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let backoffs = crash_loop(&tower, "plug:web-2")?;
    assert_growing(&backoffs, "exit ");
    assert_eq!(tower.events().count("child_gave_up"), 0);
    tower.events().wait_n("host_offline web-2", 1, WAIT, |e| {
        e.name == "host_offline" && e.str("host") == Some("web-2")
    })?;

    // Within the last back-off (6.4 s): the host says why it is offline...
    let hosts = ok(tower.cli(&["hosts"])?)?;
    let line = hosts.lines().find(|l| l.starts_with("web-2")).unwrap_or("");
    assert!(
        line.contains("offline (plug restarting: exit ") && line.contains("next try in"),
        "{hosts}"
    );
    // ...and the tower's status shows the plug backing off, restarted
    // after each crash but the last.
    let d = daemon(&tower, "plug:web-2")?.expect("plug:web-2 shown");
    assert_eq!(d["state"], "backing_off", "{d}");
    assert_eq!(d["restarts"], (CRASHES - 1) as u64, "{d}");
    assert!(
        d["last_exit"]
            .as_str()
            .is_some_and(|s| s.starts_with("exit ")),
        "{d}"
    );
    assert!(
        d["next_try"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{d}"
    );
    let text = ok(tower.cli(&["tower", "status"])?)?;
    let row = text
        .lines()
        .find(|l| l.starts_with("plug:web-2"))
        .unwrap_or("");
    assert!(row.contains("backing off, next try in"), "{text}");
    for name in [
        "escalator",
        "referee",
        "majordomo",
        "metrics",
        "provisioner",
        "deployd",
        "plug:web-1",
    ] {
        let row = text.lines().find(|l| l.starts_with(name)).unwrap_or("");
        assert!(row.contains("running"), "{name}: {text}");
    }

    // The metrics say it too: a state gauge and a restarts counter.
    let body = scrape(&tower)?;
    for line in [
        r#"vigie_child_state{child="plug",host="web-2",state="backing_off"} 1"#,
        r#"vigie_child_state{child="plug",host="web-2",state="running"} 0"#,
        r#"vigie_child_state{child="provisioner",host="",state="running"} 1"#,
        r#"vigie_child_restarts_total{child="plug",host="web-2"} 7"#,
    ] {
        assert!(body.lines().any(|l| l == line), "{line}\n{body}");
    }

    // The cause passes: the plug is back at its next try, no restart of
    // the tower, and its host works.
    std::fs::create_dir_all(&root)?;
    tower.wait_from("plug:web-2", "plug_started", 2, WAIT)?;
    tower.events().wait_n("host_online web-2", 2, WAIT, |e| {
        e.name == "host_online" && e.str("host") == Some("web-2")
    })?;
    let c = tower.api()?.changes(ApiCall::Submit {
        spec: vigie_tests::front::spec("t")?,
        target: "web-2".into(),
    })?;
    let done = tower.wait_final(&[c[0].id.clone()], WAIT)?;
    assert_eq!(done[0].state, vigie_wire::tower::ChangeState::Succeeded);
    assert_eq!(
        daemon(&tower, "plug:web-2")?.expect("shown")["state"],
        "running"
    );
    assert_eq!(tower.events().count("launcher_started"), 1);
    Ok(())
}

#[test]
fn tower_status_shows_plugs_only_to_those_who_may_read_their_host() -> anyhow::Result<()> {
    let tower = Launcher::start(setup("statusgrants"))?;
    let dir = tempfile::tempdir()?;
    let tenant = vigie_wire::ids::TOWER_TENANT;
    let names = |keys| -> anyhow::Result<Vec<String>> {
        let ApiAnswer::TowerStatus(h) =
            client_with(&tower, keys, None)?.call(ApiCall::TowerStatus)?
        else {
            anyhow::bail!("tower status answer")
        };
        Ok(h.daemons.into_iter().map(|d| d.name).collect())
    };
    let daemons = [
        "metrics",
        "escalator",
        "referee",
        "majordomo",
        "provisioner",
        "deployd",
        "web",
    ];
    // Scoped to web-1: the tower's daemons and web-1's plug, not web-2's.
    let one = add_operator(
        &tower,
        dir.path(),
        tenant,
        "one",
        &grants(&["hosts.read@web-1"])?,
    )?;
    let mut want: Vec<String> = daemons.iter().map(|d| d.to_string()).collect();
    want.push("plug:web-1".into());
    assert_eq!(names(&one)?, want);
    // Another tenant: no plug of this one's hosts at all.
    let other = add_operator(
        &tower,
        dir.path(),
        "globex",
        "ops",
        &grants(&["hosts.read@*"])?,
    )?;
    assert_eq!(names(&other)?, want[..daemons.len()].to_vec());
    // Without hosts.read: refused.
    let blind = add_operator(
        &tower,
        dir.path(),
        tenant,
        "blind",
        &grants(&["changes.read@*"])?,
    )?;
    let r = client_with(&tower, &blind, None)?.call(ApiCall::TowerStatus);
    assert_eq!(fault(r), Some(ApiFaultKind::Forbidden));

    // A restarted referee knows the states at once (the launcher sends
    // its snapshot to every new subscriber), its own restart included.
    tower.kill_child("referee")?;
    let d = daemon(&tower, "referee")?.expect("referee shown");
    assert_eq!(
        (&d["state"], &d["restarts"], &d["last_exit"]),
        (
            &serde_json::json!("running"),
            &serde_json::json!(1),
            &serde_json::json!("killed by SIGKILL")
        ),
        "{d}"
    );
    assert_eq!(
        daemon(&tower, "plug:web-2")?.expect("shown")["state"],
        "running"
    );
    Ok(())
}

#[test]
fn provisioning_is_refused_while_the_provisioner_backs_off_and_works_once_it_is_back(
) -> anyhow::Result<()> {
    let tower = Launcher::start(setup("provloop"))?;
    // A server whose SSH port nobody listens on: the provisioner, once it
    // takes it, fails it at once (unreachable).
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let csv = tower.dir.path().join("servers.csv");
    std::fs::write(
        &csv,
        format!(
            "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels,host_key\n\
             srv-1,127.0.0.1,{port},root,lab,1,1,10,,\n"
        ),
    )?;
    ok(tower.cli(&["servers", "import", &csv.display().to_string()])?)?;

    // The provisioner cannot start while the tower's public key is away.
    let key = tower.data_dir().join("keys/tower.public");
    let aside = tower.data_dir().join("keys/tower.public.aside");
    std::fs::rename(&key, &aside)?;
    nix::sys::signal::kill(
        tower.child_pid("provisioner")?,
        nix::sys::signal::Signal::SIGKILL,
    )?;
    let backoffs = crash_loop(&tower, "provisioner")?;
    assert_growing(&backoffs, "exit 64");

    let d = daemon(&tower, "provisioner")?.expect("provisioner shown");
    assert_eq!(d["state"], "backing_off", "{d}");
    assert_eq!(d["last_exit"], "exit 64", "{d}");
    // A request that needs it is refused, saying why; nothing is done.
    let refused = tower.cli(&["servers", "provision", "srv-1"])?;
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{err}");
    assert!(
        err.contains("the provisioner is down (restarting: exit 64, next try in"),
        "{err}"
    );
    let show = ok(tower.cli(&["servers", "show", "srv-1", "--json"])?)?;
    let v: serde_json::Value = serde_json::from_str(&show)?;
    assert_eq!(v["state"], "new", "{show}");

    // The key is back: so is the provisioner, at its next try, and the
    // same request is accepted and taken up, the tower never restarted.
    std::fs::rename(&aside, &key)?;
    tower.wait_from("provisioner", "provisioner_started", 2, WAIT)?;
    ok(tower.cli(&["servers", "provision", "srv-1"])?)?;
    tower
        .events()
        .wait_n("provision_started srv-1", 1, WAIT, |e| {
            e.name == "provision_started" && e.str("server") == Some("srv-1")
        })?;
    assert_eq!(tower.events().count("launcher_started"), 1);
    Ok(())
}
