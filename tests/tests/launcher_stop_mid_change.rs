//! Stopping the tower (SIGTERM to the launcher) while changes run: the
//! step in flight finishes, no other step starts, the plugs stop before
//! the referee so their last reports are stored, nothing a step started
//! outlives the tower, and after a restart each change says what happened.
//! (Its own test binary: the witness pipe must not leak into other tests.)

use std::time::Duration;

use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiCall, ChangeState};

const WAIT: Duration = Duration::from_secs(30);

fn submit(tower: &Launcher, yaml: &str, target: &str) -> anyhow::Result<String> {
    let spec = vigie_changes::parse_change("stop.yml", yaml)?;
    let views = tower.api()?.changes(ApiCall::Submit {
        spec,
        target: target.into(),
    })?;
    Ok(views[0].id.clone())
}

#[test]
fn a_stop_lets_the_step_in_flight_finish_starts_no_other_and_says_what_happened(
) -> anyhow::Result<()> {
    let (mut tower, witness) =
        Launcher::start_witnessed(Setup::new("stop").host("two-1", &[]).host("one-1", &[]))?;
    // A change with a step after the one that will be running…
    let two = submit(
        &tower,
        "title: two steps\nsteps:\n  - run: sleep 2; echo done > marker\n  - run: echo second > second\n",
        "two-1",
    )?;
    // …and one whose running step is its last.
    let one = submit(
        &tower,
        "title: one step\nsteps:\n  - run: sleep 2; echo done > marker\n",
        "one-1",
    )?;
    for host in ["two-1", "one-1"] {
        tower
            .events()
            .wait_n(&format!("step_started on {host}"), 1, WAIT, |e| {
                e.name == "step_started" && e.str("host") == Some(host)
            })?;
    }

    let status = tower.quit()?;
    assert_eq!(
        status.code(),
        Some(0),
        "every child stopped by itself within the grace period: {}",
        tower.daemon.stderr()
    );
    // Nothing any child or step started is left.
    witness.wait_all_gone(WAIT)?;
    for host in ["two-1", "one-1"] {
        assert_eq!(
            std::fs::read_to_string(tower.root(host).join("marker"))?,
            "done\n",
            "the step in flight on {host} finished"
        );
    }
    assert!(
        !tower.root("two-1").join("second").exists(),
        "no step started after the stop"
    );
    // The referee heard at once that the plugs take no more orders.
    let refusing = tower.events().wait_n("host_refusing", 1, WAIT, |e| {
        e.name == "host_refusing" && e.str("reason") == Some("the plug is stopping")
    })?;
    assert!(refusing.str("host").is_some());

    tower.restart()?;
    let done = tower.wait_final(&[two.clone(), one.clone()], WAIT)?;
    let state = |id: &str| {
        done.iter()
            .find(|v| v.id == id)
            .map(|v| v.state)
            .expect("the change")
    };
    assert_eq!(
        state(&two),
        ChangeState::RolledBack {
            failed_step: None,
            interrupted: false,
            stopped: true
        },
        "{done:?}"
    );
    assert_eq!(state(&one), ChangeState::Succeeded, "{done:?}");
    // The operator reads the same.
    let out = tower.cli(&["status", &two])?;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stopped with the tower"), "{text}");
    assert!(!text.contains("interrupted"), "{text}");
    Ok(())
}
