//! Nothing a host, an app or another operator wrote reaches the operator's
//! terminal as a command: a host's labels and "refusing" note, an app's log
//! lines, a step's output, a change's title and a record forged by an agent
//! come out of `vigie hosts`, `vigie logs`, `vigie submit --wait` and
//! `vigie status` with their controls shown (`\x1b`, `\r`, `\u{202e}`), a
//! table cell cannot forge a row; `--json` keeps them as JSON escapes and
//! `vigie logs --raw` gives the bytes exactly. `vigie logs --follow` on a
//! writer faster than it reads is paced and skips ahead, saying so.

use std::io::{BufRead, Read};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_majordomo::keys::KeyPair;
use vigie_tests::front::{admin, tower_key};
use vigie_tests::{vigie_bin, Launcher, Setup};
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::observe::{LogCursor, LogsChunk, LogsPage};
use vigie_wire::tower::{ApiCall, ChangeState, Labels, PlugEvent, Published};

const WAIT: Duration = Duration::from_secs(60);

/// What the issue's probes wrote: retitle the terminal (OSC 0 … BEL),
/// erase the line, go back to its start and forge a success, then turn
/// the rest of the line around.
const ATTACK: &str = "x\x1b]0;owned\x07\x1b[2K\rstep 1 succeeded\u{202e}gpj.exe";
/// The same, as the CLI shows it.
const SHOWN: &str = "x\\x1b]0;owned\\x07\\x1b[2K\\rstep 1 succeeded\\u{202e}gpj.exe";
/// A service's output as the deployer's supervisor writes it.
const REPLICA: &str = "srv/services/auto-shop-prod-web/1/replica-1";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `out` as text, refused if it holds a control a terminal would obey (a
/// newline or a tab aside) or a bidirectional override.
fn harmless(what: &str, out: &[u8]) -> anyhow::Result<String> {
    let s = text(out);
    let bad = s.chars().find(|c| {
        (c.is_control() && !matches!(c, '\n' | '\t'))
            || ('\u{202a}'..='\u{202e}').contains(c)
            || ('\u{2066}'..='\u{2069}').contains(c)
    });
    anyhow::ensure!(bad.is_none(), "{what} printed {bad:?} raw:\n{s:?}");
    Ok(s)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// An agent with a valid key that says what it likes: a CURVE DEALER to
/// the front door, registered as its host.
struct HostileAgent {
    _ctx: zmq::Context,
    socket: zmq::Socket,
    beat: Vec<u8>,
}

impl HostileAgent {
    /// Registers `host` with the agent's key and brings it online.
    fn online(
        t: &Launcher,
        host: &str,
        reported: Labels,
        refusing: Option<String>,
    ) -> anyhow::Result<Self> {
        let keys = KeyPair::generate();
        let mut admin = admin(t, None)?;
        admin.call(ApiCall::HostAdd {
            host: host.into(),
            labels: Labels::new(),
        })?;
        admin.call(ApiCall::KeyAdd {
            host: host.into(),
            public: keys.public_z85(),
        })?;
        let ctx = zmq::Context::new();
        let socket = ctx.socket(zmq::DEALER)?;
        socket.set_curve_serverkey(&tower_key(t)?)?;
        socket.set_curve_publickey(&keys.public)?;
        socket.set_curve_secretkey(&keys.secret)?;
        socket.set_linger(0)?;
        socket.connect(&t.endpoint("majordomo"))?;
        let beat = vigie_wire::encode(&FrontIn::Plug(PlugEvent::Heartbeat {
            host: host.into(),
            incarnation: 1,
            labels: reported,
            busy: None,
            refusing,
        }))?;
        let agent = Self {
            _ctx: ctx,
            socket,
            beat,
        };
        agent.beat()?;
        t.events()
            .wait_n(&format!("host_online {host}"), 1, WAIT, |e| {
                e.name == "host_online" && e.str("host") == Some(host)
            })?;
        Ok(agent)
    }

    /// A heartbeat: the host stays online (the referee's timeout is 3 s).
    fn beat(&self) -> anyhow::Result<()> {
        self.socket.send(&self.beat, 0)?;
        Ok(())
    }

    /// Keeps the host online from a thread until the returned flag is set.
    fn keep_beating(self) -> Arc<std::sync::atomic::AtomicBool> {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) && self.beat().is_ok() {
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        stop
    }
}

#[test]
fn a_host_s_labels_and_refusing_note_are_shown_not_obeyed() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("term-hosts").host("web-1", &[]))?;
    // Another operator's label: a control, and a newline forging a row.
    let forged_row = "a\nweb-9  online  0  -";
    let set = t.cli(&[
        "hosts",
        "label",
        "web-1",
        &format!("note={ATTACK}"),
        &format!("fake={forged_row}"),
    ])?;
    anyhow::ensure!(set.status.success(), "{}", text(&set.stderr));
    let beating = HostileAgent::online(
        &t,
        "far-1",
        labels(&[("role", ATTACK)]),
        Some(format!("journal full: {ATTACK}")),
    )?
    .keep_beating();

    let out = t.cli(&["hosts"])?;
    anyhow::ensure!(out.status.success(), "{}", text(&out.stderr));
    let shown = harmless("vigie hosts", &out.stdout)?;
    assert_eq!(shown.lines().count(), 3, "one row a host:\n{shown}");
    let web = shown.lines().find(|l| l.starts_with("web-1")).unwrap_or("");
    assert!(web.contains(&format!("note={SHOWN}")), "{shown}");
    assert!(web.contains("fake=a\\nweb-9  online"), "{shown}");
    let far = shown.lines().find(|l| l.starts_with("far-1")).unwrap_or("");
    assert!(far.contains(&format!("role={SHOWN}")), "reported: {shown}");
    assert!(
        far.contains(&format!("journal full: {SHOWN}")),
        "refusing: {shown}"
    );

    // JSON keeps every byte, as JSON escapes.
    let json = t.cli(&["--json", "hosts"])?;
    anyhow::ensure!(json.status.success(), "{}", text(&json.stderr));
    let raw = harmless("vigie --json hosts", &json.stdout)?;
    assert!(raw.contains("\\u001b]0;owned\\u0007"), "{raw}");
    assert!(raw.contains("\\u202e"), "{raw}");
    let far: serde_json::Value = raw
        .lines()
        .map(serde_json::from_str::<serde_json::Value>)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .find(|h| h["id"] == "far-1")
        .ok_or_else(|| anyhow::anyhow!("far-1 in {raw}"))?;
    assert_eq!(far["reported"]["role"], ATTACK);
    assert_eq!(far["refusing"], format!("journal full: {ATTACK}"));
    beating.store(true, Ordering::SeqCst);
    Ok(())
}

#[test]
fn a_catalog_s_values_and_an_imported_file_s_name_are_shown_not_obeyed() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("term-catalog"))?;
    // The CSV refuses control characters (and labels are names); a
    // bidirectional override is not one, and a file's name holds anything.
    let csv = t.dir.path().join("x\x1b]0;owned\x07\u{202e}vsc.csv");
    std::fs::write(
        &csv,
        "name,address,ssh_port,ssh_user,provider,cpu,ram_gb,disk_gb,labels\n\
         web-1,10.1.0.1,22,debian,ovh\u{202e}gpj.exe\u{2066},4,8,80,role=web\n",
    )?;
    let out = t.cli(&["servers", "import", &csv.display().to_string()])?;
    anyhow::ensure!(out.status.success(), "{}", text(&out.stderr));
    let s = harmless("vigie servers import", &out.stdout)?;
    assert!(
        s.contains("imported from x\\x1b]0;owned\\x07\\u{202e}vsc.csv"),
        "{s}"
    );
    let sessions = t.cli(&["servers", "sessions"])?;
    let s = harmless("vigie servers sessions", &sessions.stdout)?;
    assert!(s.contains("x\\x1b]0;owned\\x07\\u{202e}vsc.csv"), "{s}");
    let show = t.cli(&["servers", "show", "web-1"])?;
    let s = harmless("vigie servers show", &show.stdout)?;
    assert!(
        s.contains("provider:  ovh\\u{202e}gpj.exe\\u{2066}\n"),
        "{s}"
    );
    Ok(())
}

#[test]
fn an_app_s_log_lines_are_escaped_and_raw_gives_them_byte_for_byte() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("term-logs").host("web-1", &[]))?;
    let dir = t.root("web-1").join(REPLICA);
    std::fs::create_dir_all(&dir)?;
    let written = format!("listening on 8080\n{ATTACK}\n\x1b[31mred\x1b[0m\tand\x7f\u{9b}2J\n");
    std::fs::write(dir.join("app.log"), &written)?;
    let service = ["logs", "web-1", "--service", "auto-shop-prod-web"];

    let out = t.cli(&service)?;
    anyhow::ensure!(out.status.success(), "{}", text(&out.stderr));
    let shown = harmless("vigie logs --service", &out.stdout)?;
    assert_eq!(shown.lines().count(), 3, "{shown}");
    assert!(shown.contains(&format!("1/1 | {SHOWN}\n")), "{shown}");
    assert!(
        shown.contains("1/1 | \\x1b[31mred\\x1b[0m\tand\\x7f\\u{9b}2J\n"),
        "{shown}"
    );

    let raw = t.cli(&[&service[..], &["--raw"]].concat())?;
    anyhow::ensure!(raw.status.success(), "{}", text(&raw.stderr));
    assert_eq!(
        text(&raw.stdout),
        written,
        "--raw is the app's output exactly"
    );

    let json = t.cli(&[&["--json"], &service[..]].concat())?;
    anyhow::ensure!(json.status.success(), "{}", text(&json.stderr));
    let s = harmless("vigie --json logs", &json.stdout)?;
    assert!(s.contains("\\u001b]0;owned\\u0007\\u001b[2K\\r"), "{s}");
    let texts: Vec<String> = s
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .map(|v| v["text"].as_str().unwrap_or("").to_owned())
        })
        .collect::<Result<_, _>>()?;
    assert_eq!(texts[1], ATTACK);

    let both = t.cli(&["--json", "logs", "web-1", "--raw"])?;
    assert_eq!(both.status.code(), Some(64), "{}", text(&both.stderr));
    Ok(())
}

#[test]
fn a_step_s_output_and_a_change_s_title_are_escaped_in_progress_status_and_logs(
) -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("term-steps").host("web-1", &[]))?;
    std::fs::write(t.root("web-1").join("attack.txt"), format!("{ATTACK}\n"))?;
    // YAML's own escapes: \e is ESC, \a BEL.
    let change = t.dir.path().join("hostile.yml");
    std::fs::write(
        &change,
        "title: \"deploy\\e]0;owned\\a\\rforged\\u202Etitle\"\n\
         steps:\n  - run: \"cat attack.txt; cat attack.txt >&2; exit 3\"\n",
    )?;
    let change = change.display().to_string();
    let out = t.cli(&["submit", &change, "--target", "web-1", "--wait"])?;
    assert!(!out.status.success(), "the step fails");
    let progress = harmless("vigie submit --wait", &out.stdout)?;
    harmless("vigie submit --wait (stderr)", &out.stderr)?;
    let failed = progress
        .lines()
        .find(|l| l.contains(" FAILED: "))
        .ok_or_else(|| anyhow::anyhow!("no failed step in {progress}"))?;
    assert!(
        failed.ends_with(&format!("({SHOWN})")),
        "the stderr's last line: {failed}"
    );
    assert!(
        progress.contains("deploy\\x1b]0;owned\\x07\\rforged\\u{202e}title"),
        "the title: {progress}"
    );
    let id = failed
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow::anyhow!("no change id in {failed}"))?
        .to_owned();
    let ids = [id.clone()];
    let done = t.wait_final(&ids, WAIT)?;
    assert!(
        matches!(done[0].state, ChangeState::RolledBack { .. }),
        "{:?}",
        done[0]
    );

    let status = t.cli(&["status", &id])?;
    anyhow::ensure!(status.status.success(), "{}", text(&status.stderr));
    let s = harmless("vigie status ID", &status.stdout)?;
    assert!(s.contains(&format!("    {SHOWN}\n")), "{s}");
    let list = t.cli(&["status"])?;
    harmless("vigie status", &list.stdout)?;

    let logs = t.cli(&["logs", "web-1", "--change", &id])?;
    anyhow::ensure!(logs.status.success(), "{}", text(&logs.stderr));
    let s = harmless("vigie logs --change", &logs.stdout)?;
    assert!(s.contains(&format!("step 1 stdout | {SHOWN}\n")), "{s}");
    assert!(s.contains(&format!("step 1 stderr | {SHOWN}\n")), "{s}");
    let audit = t.cli(&["audit"])?;
    harmless("vigie audit", &audit.stdout)?;
    Ok(())
}

#[test]
fn a_log_record_forged_by_an_agent_cannot_forge_a_line() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("term-forged").host("web-1", &[]))?;
    let agent = HostileAgent::online(&t, "far-1", Labels::new(), None)?;
    let mut cli = Command::new(vigie_bin())
        .args(["logs", "far-1"])
        .env("XDG_CONFIG_HOME", t.dir.path().join("xdg"))
        .env_remove("VIGIE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    // The request reaches the agent through the majordomo; it answers
    // with records whose every field is hostile.
    let deadline = Instant::now() + WAIT;
    let request = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "no logs request reached the agent"
        );
        // Online all along: a heartbeat between waits for the request.
        agent.beat()?;
        if agent.socket.poll(zmq::POLLIN, 500)? == 0 {
            continue;
        }
        let frame = agent.socket.recv_bytes(0)?;
        if let Ok(FrontOut::Published(Published::LogsRequest(r))) = vigie_wire::decode(&frame) {
            break r;
        }
    };
    let forged = format!(
        "1700000000000\tc-\x1b]0;owned\x07\t0\tapply\t\x1b[2K\rstdout\t{ATTACK}\n\
         1700000000001\tc-2\t0\tundo\tstderr\u{202e}\tplain\n"
    );
    let answer = FrontIn::Plug(PlugEvent::Logs(LogsChunk {
        host: "far-1".into(),
        request: request.request,
        body: Ok(LogsPage {
            text: forged,
            cursor: LogCursor::default(),
            more: false,
            beyond_retention: Some(format!("rotated: {ATTACK}")),
            skipped_bytes: 0,
        }),
    }));
    agent.socket.send(vigie_wire::encode(&answer)?, 0)?;
    let mut out = Vec::new();
    let mut err = Vec::new();
    if let Some(mut o) = cli.stdout.take() {
        o.read_to_end(&mut out)?;
    }
    if let Some(mut e) = cli.stderr.take() {
        e.read_to_end(&mut err)?;
    }
    let status = cli.wait()?;
    anyhow::ensure!(status.success(), "{}", text(&err));
    let shown = harmless("vigie logs (forged)", &out)?;
    harmless("vigie logs (forged, stderr)", &err)?;
    assert_eq!(shown.lines().count(), 2, "{shown}");
    assert!(
        shown.contains(&format!(
            "c-\\x1b]0;owned\\x07 step 1 \\x1b[2K\\rstdout | {SHOWN}\n"
        )),
        "{shown}"
    );
    assert!(
        shown.contains("c-2 step 1 undo stderr\\u{202e} | plain\n"),
        "{shown}"
    );
    assert!(
        text(&err).contains(&format!("rotated: {SHOWN}")),
        "{}",
        text(&err)
    );
    Ok(())
}

/// `vigie logs --follow` on an app writing far faster than it reads: the
/// history is read back to back up to what a host keeps (8 MiB), then the
/// CLI skips to the newest lines; behind again, it pauses between calls
/// and after 8 full pages skips again. Each skip is said with its size.
#[test]
fn follow_on_a_flood_is_paced_and_says_what_it_skipped() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("term-flood").host("web-1", &[]))?;
    let dir = t.root("web-1").join(REPLICA);
    std::fs::create_dir_all(&dir)?;
    // 48 MiB waiting: the plug copies 256 KiB of it per request, the CLI
    // reads 64 KiB a call, so it never catches up by reading.
    {
        use std::io::Write;
        let mut f = std::fs::File::create(dir.join("app.log"))?;
        let line = format!("{}\n", "flood ".repeat(16));
        let block = line.repeat((1 << 20) / line.len());
        for _ in 0..48 {
            f.write_all(block.as_bytes())?;
        }
    }
    let started = Instant::now();
    let mut follow = follow_web_logs(&t)?;
    let printed = Arc::new(AtomicU64::new(0));
    let mut stdout = follow
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("stdout"))?;
    let count = printed.clone();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            count.fetch_add(n as u64, Ordering::SeqCst);
        }
    });
    let stderr = follow
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("stderr"))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    // Calls (the CLI's `logs_page` events) and skip notes, until the second skip.
    let mut calls: Vec<Instant> = Vec::new();
    let mut skips: Vec<(Instant, usize, u64, String)> = Vec::new();
    let mut seen = Vec::new();
    let deadline = started + Duration::from_secs(120);
    while skips.len() < 2 {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok((at, line)) = rx.recv_timeout(left) else {
            let _ = follow.kill();
            anyhow::bail!(
                "no second skip after {} calls, {} bytes printed; stderr: {:?}",
                calls.len(),
                printed.load(Ordering::SeqCst),
                seen.iter().rev().take(5).collect::<Vec<_>>()
            );
        };
        if line.contains("\"event\":\"logs_page\"") {
            calls.push(at);
        } else if line.contains("bytes skipped") {
            skips.push((at, calls.len(), printed.load(Ordering::SeqCst), line));
        } else {
            seen.push(line);
        }
    }
    let _ = follow.kill();
    let _ = follow.wait();
    let (first_at, first_calls, first_bytes, first_note) = &skips[0];
    let (second_at, second_calls, second_bytes, second_note) = &skips[1];
    for note in [first_note, second_note] {
        let n: u64 = note
            .split("… ")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no size in {note:?}"))?;
        assert!(n > 0, "{note}");
    }
    // The history: at most what a host keeps (8 MiB, 128 pages) and the skip.
    assert!(
        *first_calls <= 128 + 3,
        "{first_calls} calls before the first skip"
    );
    assert!(
        *first_bytes <= 9 << 20,
        "{first_bytes} bytes before the first skip"
    );
    // Behind: 8 full pages, paused at least 250 ms apart, then the skip.
    let behind = second_calls - first_calls;
    assert!(behind <= 8 + 1, "{behind} calls between skips");
    assert!(
        *second_at - *first_at >= Duration::from_millis(7 * 250),
        "{:?} between skips: not paced",
        *second_at - *first_at
    );
    assert!(
        second_bytes - first_bytes <= 9 * 64 * 1024 + 64 * 1024,
        "{second_bytes} - {first_bytes}"
    );
    Ok(())
}

/// The issue's measure (`cargo test -p vigie-tests --test terminal --
/// --ignored --nocapture`): an app writing ~30 MiB/s for 30 s, followed by
/// `vigie logs --service --follow`; prints the bytes the CLI printed, its
/// calls and its skips (figures in BENCHMARKS.md).
#[test]
#[ignore]
fn bench_follow_on_a_flood_for_30_s() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("term-bench").host("web-1", &[]))?;
    let dir = t.root("web-1").join(REPLICA);
    std::fs::create_dir_all(&dir)?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let path = dir.join("app.log");
        std::thread::spawn(move || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            let line = format!("{}\n", "flood ".repeat(16));
            let block = line.repeat((1 << 20) / line.len());
            while !stop.load(Ordering::SeqCst) {
                f.write_all(block.as_bytes())?;
                written.fetch_add(block.len() as u64, Ordering::SeqCst);
                // About 30 MiB/s: far more than anyone reads.
                std::thread::sleep(Duration::from_millis(33));
            }
            Ok(())
        })
    };
    let mut follow = follow_web_logs(&t)?;
    let mut stdout = follow
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("stdout"))?;
    let printed = std::thread::spawn(move || {
        let mut n = 0u64;
        let mut buf = vec![0u8; 1 << 16];
        while let Ok(k) = stdout.read(&mut buf) {
            if k == 0 {
                break;
            }
            n += k as u64;
        }
        n
    });
    let stderr = follow
        .stderr
        .take()
        .ok_or_else(|| anyhow::anyhow!("stderr"))?;
    let notes = std::thread::spawn(move || {
        let (mut calls, mut pulled, mut skips, mut skipped) = (0u64, 0u64, 0u64, 0u64);
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.contains("\"event\":\"logs_page\"") {
                calls += 1;
                pulled += serde_json::from_str::<serde_json::Value>(&line)
                    .ok()
                    .and_then(|v| v["bytes"].as_u64())
                    .unwrap_or(0);
            } else if let Some(rest) = line.split("… ").nth(1) {
                skips += 1;
                skipped += rest
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
            }
        }
        (calls, pulled, skips, skipped)
    });
    std::thread::sleep(Duration::from_secs(30));
    let _ = follow.kill();
    let _ = follow.wait();
    stop.store(true, Ordering::SeqCst);
    let _ = writer.join();
    let printed = printed.join().unwrap_or(0);
    let (calls, pulled, skips, skipped) = notes.join().unwrap_or_default();
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    println!(
        "follow 30 s on a flood: app wrote {} MiB; CLI pulled {:.1} MiB in {calls} calls, \
         printed {:.1} MiB, {skips} skips ({:.1} MiB skipped)",
        written.load(Ordering::SeqCst) >> 20,
        mib(pulled),
        mib(printed),
        mib(skipped)
    );
    Ok(())
}

/// `vigie logs web-1 --service auto-shop-prod-web --since 1h --follow`
/// (the history first: `--follow` alone starts at the end) with its
/// events on stderr (JSON) and what it prints on stdout, both piped.
fn follow_web_logs(t: &Launcher) -> std::io::Result<std::process::Child> {
    Command::new(vigie_bin())
        .args([
            "--log-json",
            "logs",
            "web-1",
            "--service",
            "auto-shop-prod-web",
            "--since",
            "1h",
            "--follow",
        ])
        .env("XDG_CONFIG_HOME", t.dir.path().join("xdg"))
        .env("VIGIE_LOG", "warn,vigie=debug")
        .env_remove("VIGIE_CONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
}
