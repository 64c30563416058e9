//! `vigie demo`: the first thing a newcomer runs. A whole tower in a temp
//! dir — launcher, escalator, referee, three local hosts — then a sample
//! change set: one change that succeeds on every host, one that fails on
//! `db-1` and rolls back. Serves until Ctrl-C (`--exit`: stop after it).

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;
use vigie_client::{calls, ApiClient};
use vigie_launcher::LaunchOptions;
use vigie_wire::lifecycle::LifecycleEvent;
use vigie_wire::tower::ChangeState;

use crate::runtime::shutdown_flag;

const HELLO: &str = include_str!("../../../examples/changes/hello.yml");
const FAILS: &str = include_str!("../../../examples/changes/fails.yml");
const HOSTS: [(&str, &str); 3] = [("web-1", "web"), ("web-2", "web"), ("db-1", "db")];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Stop after the sample instead of serving until Ctrl-C.
    #[arg(long)]
    exit: bool,
}

/// The demo's setup: the internal endpoints are the defaults (sockets in
/// the data dir); the front door is a socket too, and metrics take any free
/// port, so the demo takes no fixed port.
fn setup_yaml(dir: &std::path::Path) -> String {
    let mut y = format!(
        "name: demo\ndata_dir: data\nendpoints:\n  majordomo: ipc://{}/majordomo.sock\n  metrics: http://127.0.0.1:0\nhosts:\n",
        dir.display()
    );
    for (id, role) in HOSTS {
        y.push_str(&format!("  - id: {id}\n    driver: local\n    labels: {{role: {role}}}\n    options: {{root: hosts/{id}}}\n"));
    }
    y
}

/// Waits for the tower to be ready and every host online at the referee.
fn wait_ready(events: &mpsc::Receiver<LifecycleEvent>) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut ready, mut online) = (false, 0);
    while !(ready && online == HOSTS.len()) {
        let left = deadline.saturating_duration_since(Instant::now());
        let ev = events
            .recv_timeout(left)
            .map_err(|_| anyhow::anyhow!("the tower did not come up within 60 s"))?;
        match ev.name.as_str() {
            "tower_ready" => ready = true,
            "host_online" => online += 1,
            "start_failed" => anyhow::bail!("the tower failed to start: {}", ev.fields_json),
            _ => {}
        }
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let dir = tempfile::Builder::new().prefix("vigie-demo-").tempdir()?;
    for (id, _) in HOSTS {
        std::fs::create_dir_all(dir.path().join("hosts").join(id))?;
    }
    let file = dir.path().join("tower.yml");
    std::fs::write(&file, setup_yaml(dir.path()))?;
    let setup = vigie_launcher::setup::load(&file)?;
    let data = setup.data_dir.clone();
    vigie_launcher::prepare_data_dir(&setup)?;
    let _lock = vigie_escalator::lock_dir(&data, "launcher.lock")?;
    let tower_keys = vigie_launcher::ensure_tower_keys(&data)?;
    let admin = vigie_launcher::ensure_admin(&data, &tower_keys, &setup.endpoints.majordomo)?;
    let (tx, events) = mpsc::channel();

    let shutdown = shutdown_flag()?;
    let opts = LaunchOptions {
        exe: std::env::current_exe()?,
        json: false,
        quiet: true,
        observer: Some(tx),
    };
    let flag = shutdown.clone();
    let launcher = std::thread::spawn(move || vigie_launcher::run(setup, opts, flag));
    println!("Starting a tower in {} ...", dir.path().display());
    wait_ready(&events)?;
    println!("Tower up: escalator, referee and 3 hosts (web-1, web-2, db-1), each a directory under {}/hosts.\n", dir.path().display());

    // The demo's operator is the tower's admin, through the front door.
    let mut client = super::conn::Tower::over(ApiClient::over(admin.config.connect(None)?));
    let hello = vigie_changes::parse_change("examples/changes/hello.yml", HELLO)?;
    let fails = vigie_changes::parse_change("examples/changes/fails.yml", FAILS)?;
    println!("$ vigie submit examples/changes/hello.yml --target '*' --wait");
    let views = client.ask(calls::Submit {
        spec: hello,
        target: "*".into(),
    })?;
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let first = super::tower::follow(super::out::Format::Text, &mut client, &ids, None)?;
    println!("\n$ vigie submit examples/changes/fails.yml --target db-1 --wait");
    let views = client.ask(calls::Submit {
        spec: fails,
        target: "db-1".into(),
    })?;
    let ids: Vec<String> = views.iter().map(|v| v.id.clone()).collect();
    let second = super::tower::follow(super::out::Format::Text, &mut client, &ids, None)?;
    let ok = first
        .iter()
        .filter(|v| v.state == ChangeState::Succeeded)
        .count();
    let rolled = second
        .iter()
        .filter(|v| matches!(v.state, ChangeState::RolledBack { .. }))
        .count();
    println!(
        "\n{ok} changes succeeded, {rolled} rolled back (db-1 is as it was before that change)."
    );
    if args.exit {
        // The temp dir goes with the tower: no commands to point at it.
        println!("Every modification is in the audit, hash-chained; run `vigie demo` without --exit to look at it.");
        shutdown.store(true, Ordering::Relaxed);
    } else {
        println!("Every modification is in the audit, hash-chained, in Escalator's `tower` database under {}:", data.join("escalator").display());
        let cfg = admin.config_path.display();
        println!("  vigie audit --config {cfg}");
        println!("  vigie audit verify --config {cfg}");
        println!("  vigie status --config {cfg}");
        println!("\nThe tower keeps running; try the commands above in another terminal. Ctrl-C to stop (the temp dir is removed).");
    }
    let outcome = launcher
        .join()
        .map_err(|_| anyhow::anyhow!("the launcher thread panicked"))?
        .context("launcher")?;
    println!("Tower stopped ({outcome:?}).");
    Ok(ExitCode::SUCCESS)
}
