//! The launcher SIGKILLed: its children die with it (parent-death signal).
//! (Its own test binary: the witness pipe must not leak into other tests.)

use std::time::Duration;

use vigie_tests::{is_running, wait_not_running, Launcher, Setup};

#[test]
fn children_never_outlive_a_sigkilled_launcher() -> anyhow::Result<()> {
    let (mut tower, witness) = Launcher::start_witnessed(Setup::new("kill").host("web-1", &[]))?;
    let pids = tower.all_child_pids();
    // metrics, escalator, referee, majordomo, provisioner, deployd, web,
    // one plug.
    assert_eq!(pids.len(), 8);
    assert!(pids.iter().all(|p| is_running(*p)));
    tower.kill()?;
    witness.wait_all_gone(Duration::from_secs(20))?;
    // No orphan left in the process table.
    wait_not_running(&pids, Duration::from_secs(5))?;
    Ok(())
}
