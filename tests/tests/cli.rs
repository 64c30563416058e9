//! The operator's CLI as a person or a script meets it, through the real
//! binary against a real tower: tables, the JSON contract, errors said
//! once and naming the config file they came from, timeouts on a tower
//! that is down, keys from files, a closed pipe, completions and man pages.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vigie_tests::{vigie_bin, Launcher, Setup};
use vigie_wire::front::KeyState;
use vigie_wire::tower::{ApiAnswer, ApiCall};

const LONG: Duration = Duration::from_secs(60);

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: Output) -> anyhow::Result<Output> {
    anyhow::ensure!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(&o),
        stderr(&o)
    );
    Ok(o)
}

fn json_lines(o: &Output) -> anyhow::Result<Vec<serde_json::Value>> {
    Ok(stdout(o)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?)
}

/// `2026-11-29T18:20:20.123Z`: RFC 3339, UTC, milliseconds.
fn is_rfc3339(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|t| {
        let b = t.as_bytes();
        b.len() == 24
            && b[4] == b'-'
            && b[10] == b'T'
            && b[19] == b'.'
            && t.ends_with('Z')
            && t[..4].parse::<u32>().is_ok_and(|y| y >= 2020)
    })
}

#[test]
fn a_stale_config_file_is_named_and_start_says_it_keeps_it() -> anyhow::Result<()> {
    let mut t = Launcher::start(Setup::new("stale"))?;
    let file = t.dir.path().join("xdg/vigie/config.yml");
    let mut config = vigie_majordomo::operator::OperatorConfig::load(&file)?;
    // An older tower on this machine left its key in the user's config.
    config.tower_key = vigie_majordomo::keys::KeyPair::generate().public_z85();
    config.write(&file)?;

    let out = t.cli(&["hosts", "--timeout", "10s"])?;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains("not this tower's public key"), "{err}");
    assert!(!err.contains("--tower-key the"), "no flag was given: {err}");

    // The flags still reach the tower past the stale file.
    let key = format!("@{}", t.data_dir().join("keys/tower.public").display());
    ok(t.cli(&["hosts", "--tower-key", &key])?)?;

    t.quit()?;
    t.restart()?;
    let said = t.daemon.stderr();
    assert!(
        said.contains("keeping the CLI config") && said.contains(&file.display().to_string()),
        "{said}"
    );
    assert!(said.contains("operator.yml"), "{said}");
    Ok(())
}

#[test]
fn a_tower_that_is_down_is_said_within_the_timeout() -> anyhow::Result<()> {
    let mut t = Launcher::start(Setup::new("down"))?;
    t.quit()?;
    let started = Instant::now();
    let out = t.cli(&["hosts"])?;
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(69), "unavailable");
    let err = stderr(&out);
    assert!(err.contains("nothing listens at"), "{err}");
    assert!(err.contains("config.yml"), "names the file: {err}");
    assert!(
        took < Duration::from_secs(1),
        "a refused connection is known at once: {took:?}"
    );
    let started = Instant::now();
    let out = t.cli(&["status", "--timeout", "1s"])?;
    assert!(!out.status.success());
    assert!(started.elapsed() < Duration::from_secs(5), "--timeout 1s");
    Ok(())
}

#[test]
fn errors_are_said_once() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("once").host("web-1", &[]))?;
    let out = t.cli(&["cancel", "c-nope"])?;
    assert!(!out.status.success());
    let err = stderr(&out);
    let line = err.lines().find(|l| l.starts_with("vigie:")).unwrap_or("");
    assert!(line.contains("not found"), "{err}");
    let once: Vec<&str> = line.split("c-nope").collect();
    assert_eq!(once.len(), 2, "the message is said once: {line}");
    assert!(!line.contains("NotFound"), "{line}");
    Ok(())
}

#[test]
fn tables_have_headers_queued_excludes_running_and_status_shows_stderr() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("tables").host("web-1", &[("role", "web")]))?;
    let root = t.root("web-1");
    let gate = root.join("gate");
    nix::unistd::mkfifo(&gate, nix::sys::stat::Mode::from_bits_truncate(0o600))?;
    let dir = t.data_dir();
    let hold = dir.join("hold.yml");
    std::fs::write(
        &hold,
        "title: hold\nsteps:\n  - run: read x < gate\n    timeout: 60s\n",
    )?;
    let fails = dir.join("fails.yml");
    std::fs::write(
        &fails,
        "title: fails\nsteps:\n  - name: ok\n    run: \"true\"\n  - name: broken\n    run: echo first line >&2; echo the real cause >&2; exit 4\n",
    )?;
    let held = ok(t.cli(&["--json", "submit", path(&hold), "--target", "web-1"])?)?;
    let held = json_lines(&held)?;
    let held_id = held[0]["id"].as_str().unwrap_or_default().to_owned();
    t.events().wait("step_started", LONG)?;
    let mut queued = Vec::new();
    for _ in 0..2 {
        let out = ok(t.cli(&["submit", path(&fails), "--target", "web-1", "--json"])?)?;
        queued.push(
            json_lines(&out)?[0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }

    let hosts = ok(t.cli(&["hosts"])?)?;
    let text = stdout(&hosts);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    assert!(header.starts_with("HOST "), "{text}");
    let row = lines.next().unwrap_or_default();
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        cols[..4],
        ["web-1", "online", "2", held_id.as_str()],
        "{text}"
    );
    // Columns line up under their header.
    assert_eq!(
        header.find("QUEUED"),
        row.find(" 2 ").map(|i| i + 1),
        "{text}"
    );
    let hosts = json_lines(&ok(t.cli(&["hosts", "--json"])?)?)?;
    assert_eq!(hosts[0]["queued"], 2);
    assert_eq!(hosts[0]["running"], held_id.as_str());

    let running = json_lines(&ok(t.cli(&["status", &held_id, "--json"])?)?)?;
    assert_eq!(running[0]["state"], "running");
    assert_eq!(running[0]["step"], 1, "steps are numbered from 1");
    assert_eq!(running[0]["steps"][0]["status"], "running");

    std::fs::write(&gate, "go\n")?;
    let done = t.wait_final(&queued, LONG)?;
    assert_eq!(done.len(), 2);
    let status = ok(t.cli(&["status", &queued[0]])?)?;
    let text = stdout(&status);
    assert!(
        text.lines().next().unwrap_or_default().starts_with("ID "),
        "{text}"
    );
    assert!(text.contains("rolled back (step 2 failed)"), "{text}");
    assert!(text.contains("STEP") && text.contains("broken"), "{text}");
    assert!(
        text.contains("the real cause") && text.contains("first line"),
        "the failing step's stderr: {text}"
    );
    assert!(!text.contains('\u{1b}'), "no colour codes off a terminal");
    Ok(())
}

fn path(p: &std::path::Path) -> &str {
    p.to_str().unwrap_or_default()
}

#[test]
fn the_json_contract() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("json").host("web-1", &[]).host("web-2", &[]))?;
    let file = t.data_dir().join("fails.yml");
    std::fs::write(
        &file,
        "title: fails\nsteps:\n  - run: \"true\"\n  - name: boom\n    run: exit 3\n",
    )?;
    let out = t.cli(&[
        "submit",
        path(&file),
        "--target",
        "web-*",
        "--wait",
        "--json",
    ])?;
    assert!(!out.status.success(), "rolled back changes fail --wait");
    let lines = json_lines(&out)?;
    let last = lines
        .iter()
        .rev()
        .find(|v| v["final"] == true)
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["state"], "rolled_back", "{last}");
    assert_eq!(last["step"], 2, "the failed step, numbered as in text");
    assert_eq!(last["interrupted"], false);
    assert_eq!(last["steps"][1]["step"], 2);
    assert_eq!(last["steps"][1]["status"], "failed");
    assert_eq!(last["steps"][0]["status"], "undone");
    assert_eq!(last["steps"][1]["result"]["exit_code"], 3);
    assert!(
        is_rfc3339(&last["submitted"]) && is_rfc3339(&last["updated"]),
        "{last}"
    );
    // Every state is a plain word: no object, no capital.
    for v in &lines {
        let s = v["state"].as_str().unwrap_or("?");
        assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{v}");
    }
    let id = last["id"].as_str().unwrap_or_default();
    let audit = json_lines(&ok(t.cli(&["audit", "--change", id, "--json"])?)?)?;
    let failed = audit
        .iter()
        .find(|r| r["action"] == "step_failed")
        .cloned()
        .unwrap_or_default();
    assert_eq!(failed["step"], 2, "audit steps numbered as in status");
    assert!(is_rfc3339(&failed["at"]), "{failed}");
    let ops = json_lines(&ok(t.cli(&["--json", "operators"])?)?)?;
    let grants = ops[0]["grants"].as_array().cloned().unwrap_or_default();
    assert!(
        grants.iter().any(|g| g == "tenants.admin@*"),
        "grants as --grant takes them: {ops:?}"
    );
    assert_eq!(ops[0]["state"], "active");
    // A command that changes something answers in JSON too.
    let added = json_lines(&ok(t.cli(&["hosts", "add", "late-1", "--json"])?)?)?;
    assert_eq!(added[0]["command"], "hosts add");
    assert_eq!(added[0]["ok"], true);
    Ok(())
}

#[test]
fn keys_are_taken_from_a_file_and_pending_lists_pending_keys_only() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("keyfile"))?;
    let secret = t.dir.path().join("far-1.key");
    let pair = vigie_majordomo::keys::write_new(&secret)?;
    let public = t.dir.path().join("far-1.key.pub");
    let arg = format!("@{}", public.display());
    ok(t.cli(&["hosts", "add", "far-1", "--key", &arg])?)?;
    let ApiAnswer::Keys(keys) = t.api()?.call(ApiCall::Keys)? else {
        anyhow::bail!("keys answer");
    };
    let k = keys.iter().find(|k| k.host == "far-1");
    assert_eq!(k.map(|k| k.state), Some(KeyState::Accepted), "{keys:?}");
    assert_eq!(k.map(|k| k.public.clone()), Some(pair.public_z85()));
    // Accepted keys are not pending.
    let pending = ok(t.cli(&["hosts", "pending", "--json"])?)?;
    assert!(stdout(&pending).trim().is_empty(), "{}", stdout(&pending));
    let text = ok(t.cli(&["hosts", "pending"])?)?;
    assert_eq!(stdout(&text).trim(), "no key is waiting");
    // A missing file is named.
    let out = t.cli(&["hosts", "add", "far-2", "--key", "@/nonexistent/far-2.pub"])?;
    assert_eq!(out.status.code(), Some(64));
    assert!(
        stderr(&out).contains("/nonexistent/far-2.pub"),
        "{}",
        stderr(&out)
    );
    Ok(())
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() -> anyhow::Result<()> {
    // Far more than a pipe holds: the writer meets the closed pipe.
    let mut child = Command::new(vigie_bin())
        .args(["completions", "bash"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut first = [0u8; 16];
    if let Some(mut out) = child.stdout.take() {
        out.read_exact(&mut first)?;
    }
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut err)?;
    }
    let status = child.wait()?;
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.is_empty(), "quiet: {err}");
    Ok(())
}

#[test]
fn completions_and_man_pages_cover_the_subcommands() -> anyhow::Result<()> {
    for shell in ["bash", "zsh", "fish"] {
        let out = ok(Command::new(vigie_bin())
            .args(["completions", shell])
            .output()?)?;
        let text = stdout(&out);
        assert!(
            text.contains("submit") && text.contains("rotate-key"),
            "{shell}"
        );
    }
    let dir = tempfile::tempdir()?;
    let out_dir = dir.path().join("man");
    ok(Command::new(vigie_bin())
        .args(["man", "--out", path(&out_dir)])
        .output()?)?;
    for page in [
        "vigie.1",
        "vigie-submit.1",
        "vigie-hosts-add.1",
        "vigie-completions.1",
    ] {
        let text = std::fs::read_to_string(out_dir.join(page))?;
        assert!(text.contains(".TH"), "{page}");
    }
    let submit = std::fs::read_to_string(out_dir.join("vigie-submit.1"))?;
    assert!(submit.contains("wait"), "{submit}");
    Ok(())
}

#[test]
fn logs_to_a_pipe_carry_no_colour_codes() -> anyhow::Result<()> {
    use std::io::BufRead;
    let dir = tempfile::tempdir()?;
    let sock = format!("ipc://{}/escalator.sock", dir.path().display());
    let mut child = Command::new(vigie_bin())
        .args([
            "escalator",
            "--data",
            path(&dir.path().join("data")),
            "--bind",
            &sock,
        ])
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .spawn()?;
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let mut seen = Vec::new();
    // Blocking reads: the daemon's first event ends the wait.
    for line in lines.by_ref() {
        let line = line?;
        let started = line.contains("escalator_started");
        seen.push(line);
        if started {
            break;
        }
    }
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id())?);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    for line in lines {
        seen.push(line?);
    }
    child.wait()?;
    assert!(
        seen.iter().any(|l| l.contains("escalator_started")),
        "{seen:#?}"
    );
    assert!(
        seen.iter().all(|l| !l.contains('\u{1b}')),
        "colour codes on a pipe: {seen:#?}"
    );
    Ok(())
}

#[test]
fn demo_exit_points_at_nothing_it_deleted() -> anyhow::Result<()> {
    let xdg = tempfile::tempdir()?;
    let out = ok(Command::new(vigie_bin())
        .args(["demo", "--exit"])
        .env("XDG_CONFIG_HOME", xdg.path())
        .output()?)?;
    let text = stdout(&out);
    let dir = text
        .lines()
        .find_map(|l| l.strip_prefix("Starting a tower in "))
        .map(|l| l.trim_end_matches(" ...").to_owned())
        .unwrap_or_default();
    assert!(!dir.is_empty(), "{text}");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} is removed");
    let after_start: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("Starting") && !l.starts_with("Tower up"))
        .collect();
    assert!(
        after_start.iter().all(|l| !l.contains(&dir)),
        "no command for the deleted {dir}: {text}"
    );
    assert!(text.contains("rolled back"), "{text}");
    Ok(())
}

#[test]
fn watch_into_a_closed_pipe_stops_at_the_next_line() -> anyhow::Result<()> {
    use std::io::BufRead;
    let t = Launcher::start(Setup::new("pipe").host("web-1", &[]))?;
    let root = t.root("web-1");
    for gate in ["gate1", "gate2"] {
        nix::unistd::mkfifo(
            &root.join(gate),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )?;
    }
    let file = t.data_dir().join("gates.yml");
    std::fs::write(
        &file,
        "title: gates\nsteps:\n  - run: read x < gate1\n    timeout: 60s\n  - run: read x < gate2\n    timeout: 60s\n",
    )?;
    let out = ok(t.cli(&["submit", path(&file), "--target", "web-1", "--json"])?)?;
    let id = json_lines(&out)?[0]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    t.events().wait("step_started", LONG)?;
    let mut child = Command::new(vigie_bin())
        .args(["watch", &id])
        .env("XDG_CONFIG_HOME", t.dir.path().join("xdg"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut first = String::new();
    if let Some(out) = child.stdout.take() {
        std::io::BufReader::new(out).read_line(&mut first)?;
    }
    assert!(first.contains(&id), "{first}");
    // The reader is gone; the next line the change makes meets the closed pipe.
    std::fs::write(root.join("gate1"), "go\n")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let status = child.wait();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        let _ = tx.send((status, err));
    });
    let got = rx.recv_timeout(Duration::from_secs(20));
    std::fs::write(root.join("gate2"), "go\n")?;
    let (status, err) = got.map_err(|_| anyhow::anyhow!("watch kept following a closed pipe"))?;
    let status = status?;
    assert!(status.success(), "{status:?}: {err}");
    assert!(err.is_empty(), "quiet: {err}");
    waiter.join().map_err(|_| anyhow::anyhow!("waiter"))?;
    let states = t.wait_final(&[id], LONG)?;
    assert_eq!(states.len(), 1);
    Ok(())
}
