//! What a step's commands left running: a step tells the test its pids
//! through a fifo in the host root (opening it blocks until the step
//! writes, so the test waits on the step, not on time), and the test asks
//! the process table which of them are still alive.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// A fifo at `path`, for a step to write its pids into.
pub fn make_fifo(path: &Path) -> anyhow::Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    Ok(())
}

/// The pids a step wrote into the fifo at `path` (whitespace-separated),
/// read on a thread; fails after `timeout`.
pub fn read_pids(path: &Path, timeout: Duration) -> anyhow::Result<Vec<i32>> {
    let (tx, rx) = mpsc::channel();
    let path: PathBuf = path.to_path_buf();
    std::thread::spawn(move || {
        let mut text = String::new();
        let read = fs::File::open(&path).and_then(|mut f| f.read_to_string(&mut text));
        let _ = tx.send(read.map(|_| text));
    });
    let text = match rx.recv_timeout(timeout) {
        Ok(read) => read?,
        Err(_) => anyhow::bail!("no step wrote its pids within {timeout:?}"),
    };
    Ok(text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?)
}

/// The live (not zombie) processes of group `pgid` and among `pids`, each
/// with its `/proc/PID/stat` line.
pub fn alive(pgid: i32, pids: &[i32]) -> Vec<String> {
    let mut live = vec![];
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parens.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (state, group) = (fields.first(), fields.get(2));
        let dead = matches!(state, Some(&"Z" | &"X"));
        let ours = group == Some(&pgid.to_string().as_str()) || pids.contains(&pid);
        if ours && !dead {
            live.push(stat.trim_end().to_string());
        }
    }
    live
}
