//! A plug SIGKILLed in the middle of a run step: the command it started
//! (its process group, and a process that left it with `setsid`) is gone
//! before the recovering plug runs the step's undo, and never finishes.

use std::fs;
use std::time::Duration;

use vigie_tests::steps::{alive, make_fifo, read_pids};
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const WAIT: Duration = Duration::from_secs(30);

/// Sleeps in the step's group and in a session of its own, tells the test
/// its pids through the `ready` fifo, and would leave markers if it lived.
/// The undo lists which of those processes it still sees alive.
const CHANGE: &str = r#"title: slow
steps:
  - run: |
      setsid sh -c 'sleep 30; echo late > escaped-marker' &
      e=$!
      sleep 30 &
      s=$!
      echo "$$ $e $s" > pids
      echo "$$ $e $s" > ready
      wait $s
      echo late > marker
    undo: |
      for p in $(cat pids); do
        state=$(cut -d' ' -f3 /proc/$p/stat 2>/dev/null)
        case "$state" in ''|Z|X) ;; *) echo "$p $state" ;; esac
      done > alive-at-undo
    timeout: 60s
"#;

/// Runs the slow step, interrupts it with `interrupt` (which returns once
/// the plug is back), and checks that nothing the step started was alive
/// when the undo ran, nor is now.
fn interrupted_step(
    name: &str,
    interrupt: impl FnOnce(&mut Launcher) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut tower = Launcher::start(Setup::new(name).host("web-1", &[]))?;
    let root = tower.root("web-1");
    make_fifo(&root.join("ready"))?;
    let c = tower.api()?.changes(ApiCall::Submit {
        spec: vigie_changes::parse_change("slow.yml", CHANGE)?,
        target: "web-1".into(),
    })?;
    let pids = read_pids(&root.join("ready"), WAIT)?;
    assert_eq!(pids.len(), 3, "{pids:?}");
    let pgid = pids[0];
    assert!(!alive(pgid, &pids).is_empty(), "the step is running");

    interrupt(&mut tower)?;
    let done = tower.wait_final(&[c[0].id.clone()], WAIT)?;
    assert_eq!(
        done[0].state,
        ChangeState::RolledBack {
            failed_step: None,
            interrupted: true,
            stopped: false
        }
    );
    assert_eq!(
        fs::read_to_string(root.join("alive-at-undo"))?,
        "",
        "the undo ran while the interrupted step was still running"
    );
    let left = alive(pgid, &pids);
    assert!(left.is_empty(), "still running after recovery: {left:?}");
    assert!(!root.join("marker").exists());
    assert!(!root.join("escaped-marker").exists());
    Ok(())
}

#[test]
fn a_plug_killed_mid_step_leaves_nothing_running_when_the_undo_runs() -> anyhow::Result<()> {
    // Restarted, the plug recovers (undoes the step) before it is ready.
    interrupted_step("plugkill", |tower| tower.kill_child("plug:web-1"))
}

#[test]
fn a_launcher_killed_mid_step_leaves_nothing_running_after_its_restart() -> anyhow::Result<()> {
    // The plug dies with the launcher; the step's processes do not (they
    // are in their own group), until the restarted plug's recovery.
    interrupted_step("launcherkill", |tower| {
        tower.kill()?;
        tower.restart()
    })
}
