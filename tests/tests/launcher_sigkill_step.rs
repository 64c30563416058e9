//! The launcher SIGKILLed while a step runs: the plug dies with it, and so
//! does everything the step started — in its group, double-forked away, or
//! in a session of its own — without waiting for a restart.
//! (Its own test binary: the witness pipe must not leak into other tests.)

use std::time::Duration;

use vigie_tests::steps::{alive, make_fifo, read_pids};
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::ApiCall;

const WAIT: Duration = Duration::from_secs(30);

const CHANGE: &str = r#"title: long
steps:
  - run: |
      setsid sleep 120 &
      e=$!
      sleep 120 &
      s=$!
      echo "$$ $e $s" > ready
      wait $s
    timeout: 300s
"#;

#[test]
fn a_sigkilled_launcher_takes_the_running_steps_processes_with_it() -> anyhow::Result<()> {
    let (mut tower, witness) =
        Launcher::start_witnessed(Setup::new("killstep").host("web-1", &[]))?;
    let root = tower.root("web-1");
    make_fifo(&root.join("ready"))?;
    tower.api()?.changes(ApiCall::Submit {
        spec: vigie_changes::parse_change("long.yml", CHANGE)?,
        target: "web-1".into(),
    })?;
    let pids = read_pids(&root.join("ready"), WAIT)?;
    assert_eq!(pids.len(), 3, "{pids:?}");
    assert!(!alive(pids[0], &pids).is_empty(), "the step is running");
    tower.kill()?;
    // The step's processes hold the witness pipe too (inherited): its end
    // is the moment the last of them is gone.
    witness.wait_all_gone(Duration::from_secs(20))?;
    let left = alive(pids[0], &pids);
    assert!(left.is_empty(), "still running: {left:?}");
    Ok(())
}
