//! What `/proc` tells of a process: its stat line, and the variable in
//! its environment that marks it as a step's (`reap` kills by it, the
//! `janitor` too, `keep` reads a kept process's start time).

use std::fs;

/// The environment variable that marks a step's processes.
pub const STEP_MARK_ENV: &str = "VIGIE_STEP";

/// What `/proc/PID/stat` says of a process.
pub(super) struct Stat {
    pub state: char,
    pub ppid: i32,
    /// Clock ticks since boot.
    pub start: u64,
}

pub(super) fn stat(pid: i32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    let (_, rest) = text.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(Stat {
        state: f.first()?.chars().next()?,
        ppid: f.get(1)?.parse().ok()?,
        start: f.get(19)?.parse().ok()?,
    })
}
