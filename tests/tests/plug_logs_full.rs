//! An app's output never stops its host: a step printing ~5 MB on a plug
//! whose state dir is a 4 MiB disk. The plug's log store stays within its
//! budget (a quarter of that disk by default), dropping its oldest files
//! first, and never takes the journal's reserve: the change reports what
//! really happened, the 20 changes queued behind it all run, the host is
//! never `refusing`, and every log file is its user's only (0600). And
//! when something else fills that disk, the logs give their space back to
//! the journal: the host recovers by itself, nobody deletes a file.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use vigie_tests::tmpfs::{fill, Tmpfs};
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const WAIT: Duration = Duration::from_secs(60);
const MIB: u64 = 1024 * 1024;

/// 50,000 lines of 100 bytes: more than the whole disk.
const LOUD: &str = "yes 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' | head -c 5000000";

/// Submits `yaml` to `host`; returns the change ids.
fn submit(tower: &Launcher, host: &str, yaml: &str) -> anyhow::Result<Vec<String>> {
    let spec = vigie_changes::parse_change("change.yml", yaml)?;
    let views = tower.api()?.changes(ApiCall::Submit {
        spec,
        target: host.into(),
    })?;
    Ok(views.into_iter().map(|v| v.id).collect())
}

/// Every file of the plug's log store: name, size, mode.
fn log_files(dir: &Path) -> anyhow::Result<Vec<(String, u64, u32)>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        let name = e.file_name().to_string_lossy().into_owned();
        out.push((name, meta.len(), meta.permissions().mode() & 0o777));
    }
    out.sort();
    Ok(out)
}

#[test]
fn a_step_printing_more_than_the_disk_leaves_the_journal_its_room() -> anyhow::Result<()> {
    let mut tower = Launcher::start(Setup::new("chatty"))?;
    let state = tower.dir.path().join("standalone").join("tiny-1");
    let Some(_tmpfs) = Tmpfs::mount(&state, "4m")? else {
        return Ok(());
    };
    tower.start_plug("tiny-1", &[])?;

    let mut ids = submit(
        &tower,
        "tiny-1",
        &format!("title: loud\nsteps:\n  - run: {LOUD}\n  - run: echo loud >> trace\n"),
    )?;
    for i in 0..20 {
        let yaml = format!("title: next {i}\nsteps:\n  - run: echo {i} >> trace\n");
        ids.extend(submit(&tower, "tiny-1", &yaml)?);
    }
    let done = tower.wait_final(&ids, WAIT)?;

    // The loud change's true outcome: both steps ran and succeeded.
    let loud = &done[0];
    assert_eq!(loud.state, ChangeState::Succeeded, "{loud:?}");
    let printed = loud.steps[0].result.as_ref().map(|r| r.ok);
    assert_eq!(printed, Some(true), "{loud:?}");
    // The host kept taking changes: all 20 ran, in order.
    assert!(
        done.iter().all(|v| v.state == ChangeState::Succeeded),
        "{done:?}"
    );
    let mut expected = String::from("loud\n");
    for i in 0..20 {
        expected.push_str(&format!("{i}\n"));
    }
    assert_eq!(
        std::fs::read_to_string(tower.root("tiny-1").join("trace"))?,
        expected
    );
    let plug = &tower.standalone["tiny-1"];
    assert_eq!(plug.events.count("journal_failed"), 0, "never refusing");
    assert_eq!(plug.events.count("plug_started"), 1, "never restarted");

    // The store kept the newest output within its budget (a quarter of
    // the disk), and the journal's reserve (another quarter) is free.
    let files = log_files(&state.join("logs"))?;
    let logs: u64 = files
        .iter()
        .filter(|(n, _, _)| n.ends_with(".log"))
        .map(|(_, len, _)| len)
        .sum();
    eprintln!("log store after 5 MB of output on a 4 MiB disk: {logs} bytes in {files:?}");
    assert!(logs > 0 && logs <= MIB, "{logs} bytes: {files:?}");
    for (name, _, mode) in &files {
        assert_eq!(*mode, 0o600, "{name}");
    }
    let fs = nix::sys::statvfs::statvfs(&state)?;
    let free = fs.blocks_available() as u64 * fs.fragment_size() as u64;
    assert!(free >= MIB, "the reserve is free: {free} bytes");
    let newest = files
        .iter()
        .rfind(|(n, _, _)| n.starts_with("steps."))
        .map(|(n, _, _)| n.clone())
        .unwrap_or_default();
    let text = std::fs::read_to_string(state.join("logs").join(newest))?;
    let last = text.lines().last().unwrap_or_default();
    assert!(
        last.contains(&loud.id) && last.ends_with("aaaa"),
        "the newest output is kept: {last}"
    );
    Ok(())
}

#[test]
fn a_disk_filled_by_another_gets_the_logs_space_back_and_the_host_recovers_by_itself(
) -> anyhow::Result<()> {
    let mut tower = Launcher::start(Setup::new("filled"))?;
    let state = tower.dir.path().join("standalone").join("tiny-1");
    let Some(_tmpfs) = Tmpfs::mount(&state, "4m")? else {
        return Ok(());
    };
    tower.start_plug("tiny-1", &[])?;
    let loud = submit(
        &tower,
        "tiny-1",
        &format!("title: loud\nsteps:\n  - run: {LOUD}\n"),
    )?;
    let done = tower.wait_final(&loud, WAIT)?;
    assert_eq!(done[0].state, ChangeState::Succeeded, "{done:?}");

    // Someone else takes every byte left; the next order (bigger than
    // what is left of the journal's last page) cannot be journaled.
    let filled = fill(&state.join("fill"))?;
    assert!(filled > 0);
    let payload = "x".repeat(16 * 1024);
    let after = submit(
        &tower,
        "tiny-1",
        &format!("title: after\nsteps:\n  - file: /payload\n    content: \"{payload}\"\n  - run: echo after >> trace\n"),
    )?;
    let done = tower.wait_final(&after, WAIT)?;
    assert_eq!(done[0].state, ChangeState::Succeeded, "{done:?}");
    assert_eq!(
        std::fs::read_to_string(tower.root("tiny-1").join("trace"))?,
        "after\n"
    );
    let plug = &tower.standalone["tiny-1"];
    let yielded = plug.events.wait("logs_yielded", WAIT)?;
    assert!(
        yielded.u64("bytes").unwrap_or(0) > 0,
        "{:?}",
        yielded.fields
    );
    assert!(state.join("fill").exists(), "not the plug's to delete");
    assert_eq!(plug.events.count("plug_started"), 1, "never restarted");
    Ok(())
}

#[test]
fn the_setup_sets_a_plug_s_log_budget_and_reserve() -> anyhow::Result<()> {
    let mut setup = Setup::new("budget").host("web-1", &[]);
    for (k, v) in [("logs_budget_mib", "2"), ("logs_reserve_mib", "3")] {
        setup.hosts[0].options.insert(k.into(), v.into());
    }
    let tower = Launcher::start(setup)?;
    let opened = tower
        .events()
        .wait_n("log_store_opened web-1", 1, WAIT, |e| {
            e.name == "log_store_opened" && e.str("source") == Some("plug:web-1")
        })?;
    assert_eq!(
        opened.u64("max_bytes"),
        Some(2 * MIB),
        "{:?}",
        opened.fields
    );
    assert_eq!(
        opened.u64("reserve_bytes"),
        Some(3 * MIB),
        "{:?}",
        opened.fields
    );
    Ok(())
}
