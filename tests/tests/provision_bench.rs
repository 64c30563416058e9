//! A benchmark, not a test (ignored by default): provisioning N servers
//! over real SSH in network namespaces, with the provisioner's `parallel`
//! setting, timed from the operator's request to every server enrolled
//! and to every host's init change finished. Run:
//!   cargo build -p vigie --bins
//!   cargo test -p vigie-tests --test provision_bench -- --ignored --nocapture
//! Prints one line per run and the ratios (see BENCHMARKS.md).

use std::time::{Duration, Instant};

use vigie_tests::sshd::{unavailable, SshMachines};
use vigie_tests::Launcher;

const WAIT: Duration = Duration::from_secs(300);

/// An event's time, in seconds.
fn at(e: &vigie_tests::Event) -> f64 {
    e.str("timestamp")
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Where one server's time went: each `provision_step` until the next,
/// the last until enrolment, then until its init change finished.
fn breakdown(events: &vigie_tests::EventLog) -> String {
    let all = events.snapshot();
    let mut marks: Vec<(String, f64)> = all
        .iter()
        .filter(|e| e.name == "provision_step")
        .map(|e| (e.str("step").unwrap_or("?").to_owned(), at(e)))
        .collect();
    for (name, label) in [
        ("server_enrolled", "(enrolled)"),
        ("change_finished", "(init done)"),
    ] {
        if let Some(e) = all.iter().find(|e| e.name == name) {
            marks.push((label.to_owned(), at(e)));
        }
    }
    marks
        .windows(2)
        .map(|w| format!("{} {:.2} s", w[0].0, w[1].1 - w[0].1))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Seconds to every `server_enrolled`, and to every init change finished.
fn provision(n: usize, parallel: usize) -> anyhow::Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let mut net = SshMachines::new(dir.path(), n)?;
    let tower =
        Launcher::start_in_netns(net.setup("bench", 7130, parallel), &net.tower_ns.clone())?;
    let data = tower.data_dir().display().to_string();
    let out = tower.cli(&["servers", "ssh-key", "--data-dir", &data])?;
    net.authorize(&String::from_utf8(out.stdout)?)?;
    for i in 0..n {
        net.start_sshd(i)?;
    }
    let csv = dir.path().join("servers.csv");
    std::fs::write(&csv, net.csv(&[]))?;
    let import = tower.cli(&["servers", "import", &csv.display().to_string()])?;
    anyhow::ensure!(import.status.success(), "{import:?}");
    let init = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/init.yml");
    let start = Instant::now();
    let asked = tower.cli(&[
        "servers",
        "provision",
        "--target",
        "role=web",
        "--init",
        init,
    ])?;
    anyhow::ensure!(asked.status.success(), "{asked:?}");
    let events = tower.events();
    let outcomes = events.wait_n("every outcome", n, WAIT, |e| {
        e.name == "server_enrolled" || e.name == "provision_failed"
    })?;
    let enrolled = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        events.count("provision_failed") == 0,
        "a server failed: {outcomes:?}"
    );
    events.wait_n("every init change", n, WAIT, |e| {
        e.name == "change_finished"
    })?;
    let finished = start.elapsed().as_secs_f64();
    if n == 1 {
        println!("one server, step by step: {}", breakdown(events));
    }
    drop(tower);
    drop(net);
    Ok((enrolled, finished))
}

#[test]
#[ignore]
fn bench_provisioning_in_parallel() -> anyhow::Result<()> {
    if let Some(why) = unavailable() {
        eprintln!("SKIPPED: {why}");
        return Ok(());
    }
    let runs = [(1, 8), (8, 1), (8, 8)];
    let mut results = Vec::new();
    for (n, parallel) in runs {
        let (enrolled, finished) = provision(n, parallel)?;
        println!(
            "provision N={n} parallel={parallel}: all enrolled in {enrolled:.2} s, \
             all init changes finished in {finished:.2} s ({:.2} s per server)",
            finished / n as f64
        );
        results.push(finished);
    }
    println!(
        "ratios: N=8 parallel=1 / N=1: {:.2}; N=8 parallel=8 / N=1: {:.2}; \
         parallel=1 / parallel=8 at N=8: {:.2}",
        results[1] / results[0],
        results[2] / results[0],
        results[1] / results[2]
    );
    Ok(())
}
