//! A plug whose journal's disk fills up: it stays up, refuses orders with a
//! reason the referee shows (`vigie hosts`), nothing is dispatched to it,
//! and once space returns it journals again and the queued change runs.
//! The plug's state dir is a real tiny tmpfs filled by a real file.

use std::time::Duration;

use vigie_tests::tmpfs::{fill, Tmpfs};
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_plug_that_cannot_journal_refuses_orders_and_runs_them_once_space_returns() -> anyhow::Result<()>
{
    let mut tower = Launcher::start(Setup::new("full"))?;
    let state = tower.dir.path().join("standalone").join("tiny-1");
    let Some(_tmpfs) = Tmpfs::mount(&state, "256k")? else {
        return Ok(());
    };
    tower.start_plug("tiny-1", &[])?;
    let filled = fill(&state.join("fill"))?;
    assert!(filled > 0, "the tmpfs took some of the filler");

    // Bigger than what is left of the journal's last page: its order
    // cannot be journaled.
    let payload = "x".repeat(16 * 1024);
    let yaml = format!(
        "title: after the disk is full\nsteps:\n  - file: /payload\n    content: \"{payload}\"\n  - run: echo done >> trace\n"
    );
    let spec = vigie_changes::parse_change("full.yml", &yaml)?;
    let ids: Vec<String> = tower
        .api()?
        .changes(ApiCall::Submit {
            spec,
            target: "tiny-1".into(),
        })?
        .into_iter()
        .map(|v| v.id)
        .collect();

    let refusing = tower
        .events()
        .wait_n("host_refusing tiny-1", 1, WAIT, |e| {
            e.name == "host_refusing" && e.str("host") == Some("tiny-1")
        })?;
    let reason = refusing.str("reason").unwrap_or_default().to_owned();
    assert!(reason.contains("No space left on device"), "{reason}");
    let plug = &tower.standalone["tiny-1"];
    plug.events.wait("journal_failed", WAIT)?;
    // The plug is still up, and says why it refuses.
    let hosts = tower.cli(&["hosts"])?;
    let listing = String::from_utf8_lossy(&hosts.stdout).into_owned();
    let row = listing
        .lines()
        .find(|l| l.starts_with("tiny-1 "))
        .unwrap_or_default();
    assert!(
        row.split_whitespace().nth(1) == Some("refusing") && row.contains("No space left"),
        "{listing}"
    );
    assert!(!tower.root("tiny-1").join("trace").exists(), "nothing ran");
    let views = tower.api()?.changes(ApiCall::Status {
        change: Some(ids[0].clone()),
        limit: 1,
    })?;
    assert!(
        views.iter().all(|v| v.state == ChangeState::Dispatched),
        "waiting for the host: {views:?}"
    );
    std::fs::remove_file(state.join("fill"))?;
    tower.events().wait_n("host_resumed tiny-1", 1, WAIT, |e| {
        e.name == "host_resumed" && e.str("host") == Some("tiny-1")
    })?;
    let done = tower.wait_final(&ids, WAIT)?;
    assert_eq!(done[0].state, ChangeState::Succeeded, "{done:?}");
    assert_eq!(
        std::fs::read_to_string(tower.root("tiny-1").join("trace"))?,
        "done\n"
    );
    assert_eq!(
        tower.standalone["tiny-1"].events.count("plug_started"),
        1,
        "the plug never restarted"
    );
    Ok(())
}
