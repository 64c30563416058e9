//! An agent whose step runs long stays what a local plug is meanwhile:
//! online to the referee (it heartbeats), sampling its host and answering
//! `vigie logs` — its plug runs in a thread of its own, apart from the
//! thread that owns its DEALER. The step blocks on a fifo until the test
//! releases it.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use vigie_tests::steps::{make_fifo, read_pids};
use vigie_tests::{Daemon, Launcher, Setup};
use vigie_wire::tower::{ApiAnswer, ApiCall, ChangeState};

const WAIT: Duration = Duration::from_secs(60);
/// The referee's default (`vigie referee --host-timeout-ms`), which the
/// launcher keeps: a host silent this long is offline.
const HOST_TIMEOUT: Duration = Duration::from_secs(3);
const SAMPLE_EVERY_MS: u64 = 500;

/// Lets the step go on (`read x < fifo` returns): when asked, or when the
/// test fails, so that no shell is left blocked on the fifo.
struct Release<'a>(&'a Path);

impl Release<'_> {
    fn now(&self) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        // Non-blocking: fails at once (ENXIO) if the step is not reading.
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(self.0)?
            .write_all(b"go\n")
    }
}

impl Drop for Release<'_> {
    fn drop(&mut self) {
        let _ = self.now();
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A tower with one agent, `far-1`, debug events on (it says each sample
/// it sends: `sample_sent`), a sample every `SAMPLE_EVERY_MS`.
fn tower_and_agent() -> anyhow::Result<(Launcher, Daemon)> {
    let t = Launcher::start(Setup::new("busy"))?;
    let dir = t.dir.path();
    let key = dir.join("far-1.key");
    let public = vigie_majordomo::keys::write_new(&key)?.public_z85();
    let out = t.cli(&["hosts", "add", "far-1", "--key", &public])?;
    anyhow::ensure!(out.status.success(), "{}", text(&out.stderr));
    let tower_key = std::fs::read_to_string(t.data_dir().join("keys/tower.public"))?;
    let root = dir.join("far-1-root");
    std::fs::create_dir_all(&root)?;
    let state = dir.join("agents/far-1");
    let (root_s, state_s, key_s) = (
        root.display().to_string(),
        state.display().to_string(),
        key.display().to_string(),
    );
    let every = SAMPLE_EVERY_MS.to_string();
    let agent = Daemon::spawn_env(
        None,
        &[("VIGIE_LOG", Path::new("debug"))],
        &[
            "agent",
            "--tower",
            &t.endpoint("majordomo"),
            "--tower-key",
            tower_key.trim(),
            "--key",
            &key_s,
            "--host",
            "far-1",
            "--root",
            &root_s,
            "--state",
            &state_s,
            "--heartbeat-ms",
            "100",
            "--metrics-every-ms",
            &every,
        ],
    )?;
    agent.events.wait("agent_connected", WAIT)?;
    t.events().wait_n("host_online far-1", 1, WAIT, |e| {
        e.name == "host_online" && e.str("host") == Some("far-1")
    })?;
    Ok((t, agent))
}

/// Submits a change to `far-1` whose first step says it runs (its pid
/// into one fifo), then waits on another, and whose `then` steps follow;
/// returns once the first step runs.
fn submit_blocking(t: &Launcher, release: &Release<'_>, then: &str) -> anyhow::Result<String> {
    let started = t.dir.path().join("started.fifo");
    make_fifo(&started)?;
    let spec = vigie_changes::parse_change(
        "t.yml",
        &format!(
            "title: long\nsteps:\n  - run: \"echo step-is-running; echo $$ > {}; read x < {}; echo released\"\n{then}",
            started.display(),
            release.0.display()
        ),
    )?;
    let c = t.api()?.changes(ApiCall::Submit {
        spec,
        target: "far-1".into(),
    })?;
    read_pids(&started, WAIT)?;
    Ok(c[0].id.clone())
}

#[test]
fn an_agent_stays_online_and_answers_logs_while_its_step_blocks() -> anyhow::Result<()> {
    let (t, agent) = tower_and_agent()?;
    let release = t.dir.path().join("release.fifo");
    make_fifo(&release)?;
    let release = Release(&release);
    let id = submit_blocking(&t, &release, "")?;
    let blocked = Instant::now();
    let samples = agent.events.count("sample_sent");

    // Logs are answered now, not once the step ends (10 s timeout before).
    let asked = Instant::now();
    let out = t.cli(&["logs", "far-1"])?;
    let took = asked.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "logs while the step runs: {}",
        text(&out.stderr)
    );
    println!("logs answered in {took:?} while the step runs");

    // Samples keep coming, each SAMPLE_EVERY_MS apart: ten of them span
    // more than the referee's host timeout, and all that time the
    // heartbeats must have kept the host online.
    let n = 10;
    agent
        .events
        .wait_n("sample_sent (x10 more)", samples + n, WAIT, |e| {
            e.name == "sample_sent"
        })?;
    let span = blocked.elapsed();
    println!("{n} samples in {span:?} while the step runs");
    assert!(span > HOST_TIMEOUT, "{span:?}");
    let offline: Vec<_> = t
        .events()
        .snapshot()
        .into_iter()
        .filter(|e| e.name == "host_offline" && e.str("host") == Some("far-1"))
        .collect();
    assert!(offline.is_empty(), "went offline mid-step: {offline:?}");
    let ApiAnswer::Hosts(hosts) = t.api()?.call(ApiCall::Hosts)? else {
        anyhow::bail!("not a host list");
    };
    let far = hosts
        .iter()
        .find(|h| h.id == "far-1")
        .ok_or_else(|| anyhow::anyhow!("no far-1 in {hosts:?}"))?;
    assert!(far.online, "{far:?}");
    assert_eq!(far.in_flight.as_deref(), Some(id.as_str()), "{far:?}");

    // Released, the change succeeds.
    release.now()?;
    let done = t.wait_final(std::slice::from_ref(&id), WAIT)?;
    assert_eq!(done[0].state, ChangeState::Succeeded, "{:?}", done[0]);
    let tail = &done[0].steps[0]
        .result
        .as_ref()
        .expect("result")
        .stdout_tail;
    assert!(tail.contains("released"), "{tail}");
    Ok(())
}

#[test]
fn an_agent_stopped_mid_step_says_so_at_once_finishes_the_step_and_rolls_back() -> anyhow::Result<()>
{
    let (t, mut agent) = tower_and_agent()?;
    let release = t.dir.path().join("release.fifo");
    make_fifo(&release)?;
    let release = Release(&release);
    let second = t.dir.path().join("second");
    let id = submit_blocking(
        &t,
        &release,
        &format!("  - run: \"touch {}\"\n", second.display()),
    )?;
    agent.signal(nix::sys::signal::Signal::SIGTERM)?;
    // Said while the step still runs: the referee dispatches nothing more.
    t.events()
        .wait_n("host_refusing far-1 (stopping)", 1, WAIT, |e| {
            e.name == "host_refusing"
                && e.str("host") == Some("far-1")
                && e.str("reason") == Some("the plug is stopping")
        })?;
    release.now()?;
    let done = t.wait_final(std::slice::from_ref(&id), WAIT)?;
    assert_eq!(
        done[0].state,
        ChangeState::RolledBack {
            failed_step: None,
            interrupted: false,
            stopped: true
        },
        "{:?}",
        done[0]
    );
    assert!(!second.exists(), "no step started after the stop");
    let status = agent.wait_exit(WAIT)?;
    assert!(status.success(), "{status:?}: {}", agent.stderr());
    Ok(())
}
