//! What a local step costs beside its command: a one-step `echo hi` run by
//! the local driver (prepare + apply, as a plug does) against a bare
//! `sh -c 'echo hi'` spawned and waited for, alternated in the same run.
//! With `--background N`, N idle processes run on the machine meanwhile:
//! a step's cost must not grow with them.
//!
//! `cargo run --release -p vigie-drivers --example step_cost -- [ROUNDS] [--background N]`
//! (`VIGIE_STEP_CONTAIN=subreaper|marks` forces a fallback.)

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigie_drivers::{Action, Driver, LocalDriver};

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rounds: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(200);
    let background: usize = args
        .iter()
        .position(|a| a == "--background")
        .and_then(|i| args.get(i + 1)?.parse().ok())
        .unwrap_or(0);
    // Started by a shell that exits: like the machine's other processes,
    // they are not this process's children.
    let out = Command::new("sh")
        .args(["-c", "i=0; while [ $i -lt \"$0\" ]; do sleep 600 >/dev/null 2>&1 & echo $!; i=$((i+1)); done"])
        .arg(background.to_string())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()?;
    let idle: Vec<i32> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect();

    let root = tempfile::tempdir()?;
    let stashes = tempfile::tempdir()?;
    let mut driver = LocalDriver::new(root.path())?;
    let echo = Action::Run {
        command: vigie_drivers::Command::Shell("echo hi".into()),
        undo: None,
        env: vec![],
        cwd: None,
        timeout_ms: 30_000,
    };
    let (mut step, mut bare) = (Vec::new(), Vec::new());
    for i in 0..rounds + 10 {
        let stash = stashes.path().join(i.to_string());
        std::fs::create_dir(&stash)?;
        let t = Instant::now();
        driver.prepare(&echo, &stash)?;
        let r = driver.apply(&echo, &stash);
        let s = t.elapsed();
        assert!(r.ok && r.stdout_tail == "hi\n", "{r:?}");
        let t = Instant::now();
        let out = Command::new("sh")
            .args(["-c", "echo hi"])
            .stdin(Stdio::null())
            .output()?;
        let b = t.elapsed();
        assert_eq!(out.stdout, b"hi\n");
        // The first rounds warm caches up (and start the janitor).
        if i >= 10 {
            step.push(s);
            bare.push(b);
        }
    }
    if !idle.is_empty() {
        let pids: Vec<String> = idle.iter().map(i32::to_string).collect();
        let _ = Command::new("kill").args(&pids).status();
    }
    let how = std::env::var("VIGIE_STEP_CONTAIN").unwrap_or_else(|_| "auto".into());
    let (s50, b50) = (pct(&mut step, 0.5), pct(&mut bare, 0.5));
    println!(
        "containment {how}, {background} idle processes besides, {rounds} rounds: \
         step p50 {s50:.2?} p90 {:.2?} | bare sh -c p50 {b50:.2?} p90 {:.2?} | ratio p50 {:.2}x",
        pct(&mut step, 0.9),
        pct(&mut bare, 0.9),
        s50.as_secs_f64() / b50.as_secs_f64()
    );
    Ok(())
}
