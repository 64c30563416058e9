//! A benchmark that fails stops everything it started, its reconnection
//! storm included: `vigie bench agents --storm` whose fleet cannot come
//! back in time (here given no time at all: the restarted tower is up, its
//! agents reconnecting, when it fails) fails, and leaves no tower —
//! neither the first nor the restarted one —, no simulator and no temp dir
//! behind. The witness pipe is held by every process the benchmark starts.

use std::time::Duration;

use vigie_tests::Daemon;

#[test]
fn a_storm_that_misses_its_deadline_stops_the_restarted_tower_and_simulators() -> anyhow::Result<()>
{
    let tmp = tempfile::tempdir()?;
    let (mut bench, witness) = Daemon::spawn_witnessed(
        &[("TMPDIR", tmp.path())],
        &[
            "bench",
            "agents",
            "--hosts",
            "20",
            "--storm",
            "--back-within",
            "0",
        ],
    )?;
    let status = bench.wait_exit(Duration::from_secs(240))?;
    assert!(!status.success(), "the fleet cannot be back in no time");
    let said = bench.stderr();
    assert!(
        said.contains("the fleet cannot be back within"),
        "it failed in the storm, not before: {said}"
    );
    witness.wait_all_gone(Duration::from_secs(30))?;
    let left: Vec<_> = std::fs::read_dir(tmp.path())?.collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}
