//! Crash points: each storage engine under a fault at every faultable call
//! of a workload — LevelDB's write(2) and fdatasync failed (ENOSPC), short,
//! or a kill — reopened after each and checked against the model of
//! acknowledged writes. `vigie bench crashpoints` runs longer workloads.

use std::time::Instant;

use vigie_escalator::engine::faults::FaultMode;
use vigie_escalator_tests::crashpoint::{self, Sweep};
use vigie_escalator_tests::leveldb_subject::LevelDbSubject;

fn check(s: &Sweep) {
    let shown: Vec<_> = s.failures.iter().take(10).collect();
    assert!(
        s.failures.is_empty(),
        "{} of {} crash-point runs broke the model, e.g. {shown:#?}",
        s.failures.len(),
        s.runs
    );
}

#[test]
fn leveldb_keeps_every_acknowledged_write_at_every_crash_point() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let turns = crashpoint::workload(7, 45);
    let t = Instant::now();
    let mut make = |name: &str| crashpoint::fresh_dir(dir.path(), name).map(LevelDbSubject::new);
    let s = crashpoint::sweep(&mut make, &turns, &FaultMode::ALL, 1).map_err(anyhow::Error::msg)?;
    eprintln!(
        "{} calls, {} runs in {:.1?}: {} acknowledged writes checked, {} unacknowledged found whole, {} torn tails cut",
        s.ops, s.runs, t.elapsed(), s.acknowledged, s.unacked_present, s.tails_cut
    );
    check(&s);
    // The sweep must have crossed what it claims to test.
    assert!(s.ops > 50, "only {} write/sync calls", s.ops);
    assert!(s.tails_cut > 0, "no kill left a torn tail");
    Ok(())
}
