//! SIGTERM: an orderly shutdown, exit 0, and no process left behind. (Its
//! own test binary: the witness pipe must not leak into other tests.)

use std::time::Duration;

use vigie_tests::{wait_not_running, Launcher, Setup};

#[test]
fn sigterm_stops_every_child_in_reverse_order_and_leaves_no_process() -> anyhow::Result<()> {
    let (mut tower, witness) =
        Launcher::start_witnessed(Setup::new("term").host("web-1", &[]).host("web-2", &[]))?;
    let pids = tower.all_child_pids();
    // metrics, escalator, referee, majordomo, provisioner, deployd, web,
    // two plugs.
    assert_eq!(pids.len(), 9);
    let status = tower.quit()?;
    assert_eq!(status.code(), Some(0), "{}", tower.daemon.stderr());
    witness.wait_all_gone(Duration::from_secs(20))?;
    // No child left in the process table.
    wait_not_running(&pids, Duration::from_secs(5))?;
    let exits: Vec<String> = tower
        .events()
        .snapshot()
        .iter()
        .filter(|e| e.name == "child_exited")
        .map(|e| {
            format!(
                "{} {}",
                e.str("name").unwrap_or(""),
                e.str("status").unwrap_or("")
            )
        })
        .collect();
    // Plugs first (any order between them), then the majordomo, the
    // provisioner, the deploy daemon and the web console (one group, any
    // order), the referee, escalator, and the metrics daemon last (it
    // counted every stop).
    assert_eq!(exits.len(), 9, "{exits:?}");
    assert!(
        exits[..2]
            .iter()
            .all(|e| e.starts_with("plug:") && e.ends_with("exit 0")),
        "{exits:?}"
    );
    let mut front = exits[2..6].to_vec();
    front.sort();
    assert_eq!(
        front,
        [
            "deployd exit 0",
            "majordomo exit 0",
            "provisioner exit 0",
            "web exit 0"
        ],
        "{exits:?}"
    );
    assert_eq!(
        exits[6..],
        ["referee exit 0", "escalator exit 0", "metrics exit 0"]
    );
    let stopped = tower
        .events()
        .wait("launcher_stopped", Duration::from_secs(1))?;
    assert_eq!(stopped.fields["clean"], true);
    Ok(())
}
