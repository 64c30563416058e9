//! The plug journal's crash-point model check: a workload of records is
//! written through the real file journal, then the file is cut at every
//! byte offset of its last records (a crash mid-append) or one byte of an
//! earlier record is flipped (a corrupt disk). After reopening: every
//! record whole before the cut is loaded and nothing of a partial one;
//! appending after recovery leaves no garbage between records; a corrupt
//! record followed by others is an error, never silently dropped.

use std::path::Path;

use vigie_plug::{FileJournal, Journal, JournalRecord};
use vigie_wire::change::{Action, ChangeSpec, Command, Step, StepResult};
use vigie_wire::tower::{Outcome, Report, ReportKind};

fn report(seq: u64, kind: ReportKind) -> JournalRecord {
    JournalRecord::Report(Report {
        host: "web-1".into(),
        incarnation: 3,
        seq,
        change: "c7".into(),
        at_ms: 1_700_000_000_000 + seq,
        kind,
    })
}

/// What a plug writes for one change, with records of every kind and size.
fn workload() -> Vec<JournalRecord> {
    let spec = ChangeSpec {
        title: "deploy".into(),
        steps: vec![Step {
            name: "say".into(),
            action: Action::Run {
                command: Command::Shell("echo hi; ".repeat(50)),
                undo: None,
                env: vec![],
                cwd: None,
                timeout_ms: 1000,
            },
        }],
    };
    let mut result = StepResult::ok("exit 0");
    result.stdout_tail = "hi\n".repeat(100);
    vec![
        JournalRecord::Incarnation { id: 3 },
        JournalRecord::Order {
            change: "c7".into(),
            spec,
        },
        report(1, ReportKind::Accepted),
        JournalRecord::Acked { upto: 1 },
        report(2, ReportKind::StepStarted { step: 0 }),
        report(3, ReportKind::StepFinished { step: 0, result }),
        report(
            4,
            ReportKind::Finished {
                outcome: Outcome::Succeeded,
            },
        ),
        JournalRecord::Acked { upto: 4 },
    ]
}

/// Writes the workload; returns the file's bytes and where each record ends.
fn written(dir: &Path) -> (Vec<u8>, Vec<usize>) {
    let path = dir.join("written");
    let mut j = FileJournal::open(&path).expect("open");
    let mut ends = Vec::new();
    for rec in workload() {
        j.append(&rec, true).expect("append");
        ends.push(std::fs::metadata(&path).expect("stat").len() as usize);
    }
    (std::fs::read(&path).expect("read"), ends)
}

fn reopen(path: &Path, bytes: &[u8]) -> Result<(FileJournal, Vec<JournalRecord>), String> {
    std::fs::write(path, bytes).expect("write");
    let mut j = FileJournal::open(path).map_err(|e| e.to_string())?;
    let recs = j.load().map_err(|e| e.to_string())?;
    Ok((j, recs))
}

#[test]
fn a_cut_at_any_byte_of_the_last_records_loses_only_the_cut_record_and_appends_cleanly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, ends) = written(dir.path());
    let all = workload();
    let after = JournalRecord::Acked { upto: 99 };
    // Every byte of the last four records, and the whole file.
    let from = ends[ends.len() - 5];
    let path = dir.path().join("cut");
    for cut in from..=bytes.len() {
        let whole = ends.iter().filter(|&&e| e <= cut).count();
        // A filesystem may also leave the tail zero-filled up to its block.
        let mut zeroed = bytes[..cut].to_vec();
        zeroed.resize(cut.next_multiple_of(4096).max(cut + 1), 0);
        let (_, loaded) =
            reopen(&path, &zeroed).unwrap_or_else(|e| panic!("cut at {cut}, zeros: {e}"));
        // (A record whose last bytes were zeros is whole again.)
        let whole_z = ends
            .iter()
            .filter(|&&e| e <= zeroed.len() && zeroed[..e] == bytes[..e])
            .count();
        assert_eq!(
            loaded,
            all[..whole_z],
            "cut at {cut} then zeros: the whole records"
        );
        let (mut j, loaded) =
            reopen(&path, &bytes[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        assert_eq!(loaded, all[..whole], "cut at {cut}: the whole records");
        j.append(&after, true).expect("append after recovery");
        drop(j);
        let mut again = FileJournal::open(&path).expect("reopen");
        let mut expect = all[..whole].to_vec();
        expect.push(after.clone());
        assert_eq!(
            again.load().expect("load after append"),
            expect,
            "cut at {cut}: the record appended after recovery follows the last whole one"
        );
        if let Some(&end) = ends.get(whole.wrapping_sub(1)) {
            let now = std::fs::read(&path).expect("read");
            assert_eq!(
                now[..end],
                bytes[..end],
                "cut at {cut}: whole records kept as they were"
            );
        }
    }
}

#[test]
fn a_corrupt_byte_in_a_record_followed_by_others_is_an_error_not_a_silent_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, ends) = written(dir.path());
    let path = dir.path().join("flipped");
    // Every byte of every record but the last (a damaged last record is
    // indistinguishable from a torn write, and is cut).
    let last_start = ends[ends.len() - 2];
    let mut silent = Vec::new();
    for at in 0..last_start {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        match reopen(&path, &b) {
            Err(_) => {}
            Ok((_, loaded)) => silent.push((at, loaded.len())),
        }
    }
    assert!(
        silent.is_empty(),
        "flipping {} bytes was not reported; the first (offset, records loaded): {:?}",
        silent.len(),
        &silent[..silent.len().min(20)]
    );
}
