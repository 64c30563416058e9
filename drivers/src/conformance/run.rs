//! Conformance: `run` steps (output tails, timeouts, process groups, and no
//! process left behind).

#![allow(clippy::unwrap_used)] // a test suite

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use super::host::Host;
use super::Maker;
use crate::{Action, Command, HOST_ROOT_ENV};

fn shell(line: &str) -> Command {
    Command::Shell(line.into())
}

fn argv(args: &[&str]) -> Command {
    Command::Argv(args.iter().map(|s| s.to_string()).collect())
}

fn run(command: Command, undo: Option<Command>) -> Action {
    Action::Run {
        command,
        undo,
        env: vec![],
        cwd: None,
        timeout_ms: 30_000,
    }
}

/// Exit code, both output tails, argv and shell forms.
pub fn run_reports_exit_code_and_output(make: Maker<'_>) {
    let mut host = Host::new(make);
    let (_, result) = host.apply(&run(shell("echo out; echo err >&2; exit 3"), None));
    assert!(!result.ok, "exit 3 is a failure");
    assert_eq!(result.exit_code, Some(3));
    assert!(result.summary.contains("exit 3"), "{}", result.summary);
    assert_eq!(result.stdout_tail, "out\n");
    assert_eq!(result.stderr_tail, "err\n");

    let (_, result) = host.apply(&run(argv(&["printf", "%s|%s", "a b", "$HOME"]), None));
    assert!(result.ok, "{}", result.summary);
    assert_eq!(result.exit_code, Some(0));
    assert_eq!(
        result.stdout_tail, "a b|$HOME",
        "argv is not given to a shell"
    );
}

/// A failing command, and one that cannot even start.
pub fn run_failing(make: Maker<'_>) {
    let mut host = Host::new(make);
    let (_, result) = host.apply(&run(argv(&["false"]), None));
    assert!(!result.ok);
    assert_eq!(result.exit_code, Some(1));
    let (_, result) = host.apply(&run(argv(&["/no/such/program"]), None));
    assert!(!result.ok);
    assert!(
        result.summary.contains("/no/such/program"),
        "{}",
        result.summary
    );
}

/// Environment added, VIGIE_HOST_ROOT set, working directory under the root.
pub fn run_env_and_cwd(make: Maker<'_>) {
    let mut host = Host::new(make);
    host.mkdir("/srv/app", 0o755);
    let step = Action::Run {
        command: shell(&format!(
            "echo \"$GREETING\"; pwd -P; echo \"${HOST_ROOT_ENV}\""
        )),
        undo: None,
        env: vec![("GREETING".into(), "hello there".into())],
        cwd: Some("/srv/app".into()),
        timeout_ms: 30_000,
    };
    let (_, result) = host.apply(&step);
    assert!(result.ok, "{}: {}", result.summary, result.stderr_tail);
    let lines: Vec<&str> = result.stdout_tail.lines().collect();
    assert_eq!(lines.len(), 3, "{:?}", result.stdout_tail);
    assert_eq!(lines[0], "hello there");
    let canonical = |p: &Path| fs::canonicalize(p).unwrap();
    assert_eq!(
        canonical(Path::new(lines[1])),
        canonical(&host.path("/srv/app"))
    );
    assert_eq!(canonical(Path::new(lines[2])), canonical(&host.root));

    // Without a cwd: the root.
    let (_, result) = host.apply(&run(shell("pwd -P"), None));
    assert_eq!(
        canonical(Path::new(result.stdout_tail.trim_end())),
        canonical(&host.root)
    );
}

/// A chatty command does not block, and only the last 4 KiB are kept.
pub fn run_keeps_only_output_tails(make: Maker<'_>) {
    let mut host = Host::new(make);
    let line = "i=0; while [ $i -lt 20000 ]; do echo \"line $i of noise\"; \
                echo \"err $i\" >&2; i=$((i+1)); done; echo END";
    let (_, result) = host.apply(&run(shell(line), None));
    assert!(result.ok, "{}", result.summary);
    assert!(
        result.stdout_tail.len() <= 4096,
        "{}",
        result.stdout_tail.len()
    );
    assert!(
        result.stdout_tail.len() > 3000,
        "{}",
        result.stdout_tail.len()
    );
    assert!(result.stdout_tail.ends_with("line 19999 of noise\nEND\n"));
    assert!(result.stderr_tail.len() <= 4096);
    assert!(result.stderr_tail.ends_with("err 19999\n"));
}

/// The undo command runs on undo; without one, undo is a no-op.
pub fn run_undo_command(make: Maker<'_>) {
    let mut host = Host::new(make);
    let before = host.snapshot();
    let step = run(
        shell("echo installed > marker"),
        Some(shell("rm marker && echo removed")),
    );
    let (stash, result) = host.apply(&step);
    assert!(result.ok, "{}", result.summary);
    assert_eq!(fs::read(host.path("/marker")).unwrap(), b"installed\n");
    let undone = host.undo(&step, &stash);
    assert_eq!(undone.stdout_tail, "removed\n");
    assert_eq!(host.snapshot(), before);

    let step = run(shell("true"), None);
    let (stash, _) = host.apply(&step);
    let undone = host.undo(&step, &stash);
    assert!(
        undone.summary.contains("no undo command"),
        "{}",
        undone.summary
    );

    let step = run(shell("true"), Some(shell("exit 4")));
    let (stash, _) = host.apply(&step);
    let undone = host.driver.undo(&step, &stash);
    assert!(!undone.ok, "a failing undo command is a failed undo");
    assert_eq!(undone.exit_code, Some(4));
}

/// Past its timeout, a command is killed with its whole process group:
/// the grandchild it left in the background dies too.
pub fn run_timeout_kills_process_group(make: Maker<'_>) {
    let mut host = Host::new(make);
    let step = Action::Run {
        command: shell("sleep 30 & echo $$ $! > pids; wait"),
        undo: None,
        env: vec![],
        cwd: None,
        timeout_ms: 500,
    };
    let started = Instant::now();
    let (_, result) = host.apply(&step);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the result waited for the grandchild"
    );
    assert!(!result.ok);
    assert_eq!(result.exit_code, None);
    assert!(
        result.summary.contains("timed out after 0.5s"),
        "{}",
        result.summary
    );
    let pids = fs::read_to_string(host.path("/pids")).unwrap();
    let mut pids = pids.split_whitespace().map(|p| p.parse::<i32>().unwrap());
    let (group, grandchild) = (pids.next().unwrap(), pids.next().unwrap());
    let survivors = wait_until_dead(group);
    assert!(
        survivors.is_empty(),
        "process group {group} (grandchild {grandchild}) still has live members: {survivors:?}"
    );
}

/// The live (not zombie) members of a process group, once they are gone
/// or after a bound. A killed process may take a moment to finish dying,
/// and its zombie lingers until its parent (here init, which may be slow
/// or absent in a container) reaps it, so zombies count as dead.
fn wait_until_dead(pgid: i32) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let live = live_members(pgid);
        if live.is_empty() || Instant::now() > deadline {
            return live;
        }
        std::thread::yield_now();
    }
}

fn live_members(pgid: i32) -> Vec<i32> {
    let Ok(proc) = fs::read_dir("/proc") else {
        // No procfs: ask the kernel about the group (zombies included).
        return match nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), None) {
            Err(nix::errno::Errno::ESRCH) => vec![],
            _ => vec![pgid],
        };
    };
    let mut live = vec![];
    for entry in proc.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue; // gone meanwhile
        };
        // "pid (comm) state ppid pgrp ...": comm may hold spaces and parens.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let (state, group) = (fields.first(), fields.get(2));
        if group == Some(&pgid.to_string().as_str()) && !matches!(state, Some(&"Z" | &"X")) {
            live.push(pid);
        }
    }
    live
}

/// Live processes whose environment holds `var` as one entry (a zombie's
/// environment reads empty: the dead are not counted).
fn carrying(var: &str) -> Vec<i32> {
    let mut found = vec![];
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(environ) = fs::read(entry.path().join("environ")) else {
            continue; // gone meanwhile
        };
        if environ.split(|b| *b == 0).any(|v| v == var.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

/// A command that backgrounds processes — a double fork (`(sleep 120 &)`,
/// re-parented away from the step) and `setsid` (out of the step's
/// process group and session) — leaves nothing running once the step has
/// ended, whether it exited at once or ran into its timeout. Checked the
/// moment the step returns: the step is only over when they are gone.
pub fn run_leaves_no_process_behind(make: Maker<'_>) {
    let mut host = Host::new(make);
    let cases = [
        (
            "exits",
            "(sleep 120 &); setsid sleep 120 & echo started",
            true,
        ),
        ("times out", "(sleep 120 &); setsid sleep 120", false),
    ];
    for (i, (what, line, ok)) in cases.into_iter().enumerate() {
        let tag = format!(
            "{}-{}-{i}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        );
        let step = Action::Run {
            command: shell(line),
            undo: None,
            env: vec![("VIGIE_TEST_TAG".into(), tag.clone())],
            cwd: None,
            timeout_ms: 1_000,
        };
        let started = Instant::now();
        let (_, result) = host.apply(&step);
        assert_eq!(result.ok, ok, "{what}: {}", result.summary);
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{what}: the step waited for what it left behind"
        );
        let left = carrying(&format!("VIGIE_TEST_TAG={tag}"));
        assert!(
            left.is_empty(),
            "{what}: processes the step started are still running: {left:?}"
        );
    }
}

/// The plug crashed in the middle of a long Run step and, restarted,
/// undoes it (a second driver on the same root and stash, while the first
/// is still waiting on the command): everything the step started — in its
/// group and in a session of its own — is gone before the undo command
/// runs, which lists what it still sees alive.
pub fn undo_kills_what_an_interrupted_step_left_running(make: Maker<'_>) {
    let mut host = Host::new(make);
    nix::unistd::mkfifo(
        &host.path("/ready"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    let step = Action::Run {
        command: shell(
            "setsid sleep 120 & e=$!; sleep 120 & s=$!; \
             echo \"$$ $e $s\" > pids; echo \"$$ $e $s\" > ready; wait $s; echo late > marker",
        ),
        undo: Some(shell(
            "for p in $(cat pids); do \
               state=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null); \
               case \"$state\" in ''|Z|X) ;; *) echo \"$p $state\" ;; esac; \
             done > alive-at-undo",
        )),
        env: vec![],
        cwd: None,
        timeout_ms: 300_000,
    };
    let stash = host.new_stash();
    host.driver.prepare(&step, &stash).unwrap();
    let mut first = make(&host.root);
    let applying = {
        let (step, stash) = (step.clone(), stash.clone());
        std::thread::spawn(move || first.apply(&step, &stash))
    };
    // Opening the fifo waits until the step wrote its pids.
    let pids = fs::read_to_string(host.path("/ready")).unwrap();
    assert_eq!(pids.split_whitespace().count(), 3, "{pids}");

    let undone = host.undo(&step, &stash);
    assert!(undone.ok, "{}", undone.summary);
    assert_eq!(
        fs::read_to_string(host.path("/alive-at-undo")).unwrap(),
        "",
        "the undo ran beside the step it undoes"
    );
    let applied = applying.join().unwrap();
    assert!(
        !applied.ok,
        "the interrupted step was killed: {}",
        applied.summary
    );
    assert!(!host.path("/marker").exists());
}
