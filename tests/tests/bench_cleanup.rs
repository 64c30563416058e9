//! A benchmark that fails stops everything it started: `vigie bench agents`
//! whose simulator runs out of descriptors (the failure 3,000 agents met)
//! leaves no tower, no simulator and no temp dir behind. A test binary of
//! its own: it lowers its own descriptor limit, and its witness pipe must
//! be held by the benchmark's processes only.

use std::time::Duration;

use nix::sys::resource::{setrlimit, Resource};
use vigie_tests::Daemon;

#[test]
fn a_benchmark_out_of_descriptors_stops_its_tower_and_simulators_and_removes_its_temp_dir(
) -> anyhow::Result<()> {
    // Every process the benchmark starts inherits this hard limit: its
    // simulator cannot open 400 agents' sockets.
    setrlimit(Resource::RLIMIT_NOFILE, 300, 300)?;
    let tmp = tempfile::tempdir()?;
    let (mut bench, witness) = Daemon::spawn_witnessed(
        &[("TMPDIR", tmp.path())],
        &["bench", "agents", "--hosts", "400", "--per-process", "400"],
    )?;
    let status = bench.wait_exit(Duration::from_secs(120))?;
    assert!(!status.success(), "the benchmark cannot succeed");
    let said = bench.stderr();
    assert!(said.contains("Too many open files"), "{said}");
    // The launcher, its daemons and the simulator are all gone.
    witness.wait_all_gone(Duration::from_secs(30))?;
    let left: Vec<_> = std::fs::read_dir(tmp.path())?.collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    Ok(())
}
