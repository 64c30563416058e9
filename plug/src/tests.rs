//! The plug's logic against a recording driver and an in-memory journal.

use std::path::Path;
use std::sync::{Arc, Mutex};

use vigie_drivers::{Driver, DriverError};
use vigie_wire::change::{Action, ChangeSpec, Command, Step, StepResult};
use vigie_wire::tower::{Order, Outcome, PlugEvent, ReportKind};

use crate::journal::{Journal, JournalRecord, MemJournal};
use crate::plug::Plug;

/// Records "apply N" / "undo N"; fails `apply` of the command "fail".
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

fn which(a: &Action) -> String {
    match a {
        Action::Run {
            command: Command::Shell(s),
            ..
        } => s.clone(),
        Action::File { path, .. } => path.clone(),
        other => other.kind().to_owned(),
    }
}

impl Driver for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }
    fn prepare(&mut self, _: &Action, _: &Path) -> Result<(), DriverError> {
        Ok(())
    }
    fn apply(&mut self, a: &Action, _: &Path) -> StepResult {
        self.0.lock().unwrap().push(format!("apply {}", which(a)));
        if which(a) == "fail" || which(a) == "/bad" {
            StepResult::failed("failed")
        } else {
            StepResult::ok("ok")
        }
    }
    fn undo(&mut self, a: &Action, _: &Path) -> StepResult {
        self.0.lock().unwrap().push(format!("undo {}", which(a)));
        StepResult::ok("undone")
    }
}

fn run(cmd: &str) -> Step {
    Step {
        name: cmd.into(),
        action: Action::Run {
            command: Command::Shell(cmd.into()),
            undo: None,
            env: vec![],
            cwd: None,
            timeout_ms: 1000,
        },
    }
}

fn file(path: &str) -> Step {
    Step {
        name: path.into(),
        action: Action::File {
            path: path.into(),
            content: vec![],
            mode: None,
        },
    }
}

fn order(change: &str, steps: Vec<Step>) -> Order {
    Order {
        change: change.into(),
        host: "h".into(),
        seq: 1,
        spec: ChangeSpec {
            title: "t".into(),
            steps,
        },
    }
}

/// A journal that survives the plug (the plug owns a box of it).
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<MemJournal>>);

impl Journal for Shared {
    fn append(&mut self, rec: &JournalRecord, durable: bool) -> Result<(), crate::PlugError> {
        self.0.lock().unwrap().append(rec, durable)
    }
    fn load(&mut self) -> Result<Vec<JournalRecord>, crate::PlugError> {
        self.0.lock().unwrap().load()
    }
}

fn plug(rec: &Recorder, j: &Shared, stash: &Path) -> Plug {
    Plug::new(
        "h",
        Default::default(),
        Box::new(rec.clone()),
        Box::new(j.clone()),
        stash,
    )
}

/// A plug on a new journal, given its incarnation by the referee.
fn fresh_plug(rec: &Recorder, j: &Shared, stash: &Path) -> Plug {
    let mut p = plug(rec, j, stash);
    assert!(p.on_incarnation("h", 7).unwrap());
    p
}

fn outcome(events: &[PlugEvent]) -> Option<Outcome> {
    events.iter().rev().find_map(|e| match e {
        PlugEvent::Report(r) => match r.kind {
            ReportKind::Finished { outcome } => Some(outcome),
            _ => None,
        },
        _ => None,
    })
}

#[test]
fn failure_undoes_completed_steps_in_reverse_and_a_failed_file_step_too() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, j) = (Recorder::default(), Shared::default());
    let mut p = fresh_plug(&rec, &j, dir.path());
    let mut out = Vec::new();
    p.on_order(
        order("c1", vec![run("a"), run("b"), run("fail"), run("d")]),
        &mut |e| out.push(e),
    )
    .unwrap();
    assert_eq!(
        *rec.0.lock().unwrap(),
        ["apply a", "apply b", "apply fail", "undo b", "undo a"]
    );
    assert_eq!(
        outcome(&out),
        Some(Outcome::RolledBack {
            failed_step: Some(2),
            interrupted: false,
            stopped: false
        })
    );

    rec.0.lock().unwrap().clear();
    p.on_order(order("c2", vec![run("a"), file("/bad")]), &mut |e| {
        out.push(e)
    })
    .unwrap();
    assert_eq!(
        *rec.0.lock().unwrap(),
        ["apply a", "apply /bad", "undo /bad", "undo a"]
    );
}

#[test]
fn a_crash_mid_change_is_rolled_back_on_restart_and_nothing_runs_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, j) = (Recorder::default(), Shared::default());
    let o = order("c1", vec![run("a"), run("b"), run("c")]);
    // The journal of a plug killed while step 2 ("b") was running.
    {
        let mut p = fresh_plug(&rec, &j, dir.path());
        p.on_order(order("c1", vec![run("a"), run("b"), run("c")]), &mut |_| {})
            .unwrap();
        let mut kept = j.0.lock().unwrap().load().unwrap();
        let cut = kept
            .iter()
            .position(|r| matches!(r, JournalRecord::Report(r) if r.kind == ReportKind::StepStarted { step: 1 }))
            .unwrap();
        kept.truncate(cut + 1);
        *j.0.lock().unwrap() = MemJournal::default();
        for r in &kept {
            j.0.lock().unwrap().append(r, true).unwrap();
        }
    }
    rec.0.lock().unwrap().clear();
    let mut p = plug(&rec, &j, dir.path());
    let mut out = Vec::new();
    p.recover(&mut |e| out.push(e)).unwrap();
    assert_eq!(
        *rec.0.lock().unwrap(),
        ["undo b", "undo a"],
        "rolled back, step c never ran"
    );
    assert_eq!(
        outcome(&out),
        Some(Outcome::RolledBack {
            failed_step: None,
            interrupted: true,
            stopped: false
        })
    );
    // The referee resends the order: a replay, refused.
    p.on_order(o, &mut |e| out.push(e)).unwrap();
    assert_eq!(rec.0.lock().unwrap().len(), 2);
    // Reports are numbered on from the journal, without a gap.
    let seqs: Vec<u64> = out
        .iter()
        .filter_map(|e| match e {
            PlugEvent::Report(r) => Some(r.seq),
            _ => None,
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // Acknowledged reports are not sent again.
    let last = *seqs.last().unwrap();
    p.on_ack(last).unwrap();
    assert_eq!(p.unacked(), 0);
}

#[test]
fn a_new_journal_waits_for_the_referee_to_hand_it_an_incarnation_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, j) = (Recorder::default(), Shared::default());
    let mut p = plug(&rec, &j, dir.path());
    p.recover(&mut |_| {}).unwrap();
    let inc = |p: &Plug| match p.heartbeat() {
        PlugEvent::Heartbeat { incarnation, .. } => incarnation,
        other => panic!("{other:?}"),
    };
    assert_eq!(inc(&p), 0, "asks for one");
    // Without one, an order is not run (its reports could not be numbered).
    p.on_order(order("c1", vec![run("a")]), &mut |_| {})
        .unwrap();
    assert!(rec.0.lock().unwrap().is_empty());
    assert!(!p.on_incarnation("other-host", 5).unwrap(), "not for it");
    assert!(p.on_incarnation("h", 5).unwrap());
    assert!(
        !p.on_incarnation("h", 6).unwrap(),
        "a journal keeps its first"
    );
    assert_eq!(inc(&p), 5);
    // After a restart, the journal says which.
    let mut again = plug(&rec, &j, dir.path());
    again.recover(&mut |_| {}).unwrap();
    assert_eq!(inc(&again), 5);
    again
        .on_order(order("c1", vec![run("a")]), &mut |_| {})
        .unwrap();
    assert_eq!(*rec.0.lock().unwrap(), ["apply a"]);
}

/// A journal whose disk fills up: appends fail (as with ENOSPC) once
/// `room` records are in it, until it is given room again.
#[derive(Clone, Default)]
struct Filling {
    inner: Shared,
    room: Arc<Mutex<Option<usize>>>,
}

impl Journal for Filling {
    fn append(&mut self, rec: &JournalRecord, durable: bool) -> Result<(), crate::PlugError> {
        let held = self.inner.0.lock().unwrap().load()?.len();
        if self.room.lock().unwrap().is_some_and(|room| held >= room) {
            return Err(crate::PlugError::Journal {
                path: "journal".into(),
                source: std::io::Error::from_raw_os_error(28),
            });
        }
        self.inner.append(rec, durable)
    }
    fn load(&mut self) -> Result<Vec<JournalRecord>, crate::PlugError> {
        self.inner.load()
    }
}

#[test]
fn a_journal_that_fills_mid_change_stops_the_change_refuses_orders_and_rolls_back_when_it_can_write(
) {
    let dir = tempfile::tempdir().unwrap();
    let (rec, j) = (Recorder::default(), Filling::default());
    let mut p = Plug::new(
        "h",
        Default::default(),
        Box::new(rec.clone()),
        Box::new(j.clone()),
        dir.path(),
    );
    p.recover(&mut |_| {}).unwrap();
    assert!(p.on_incarnation("h", 7).unwrap());
    // Room for: incarnation, order, Accepted, started 0, finished 0,
    // started 1 — step 1 runs, its result cannot be journaled.
    *j.room.lock().unwrap() = Some(6);
    let mut out = Vec::new();
    p.on_order(order("c1", vec![run("a"), run("b"), run("c")]), &mut |e| {
        out.push(e)
    })
    .unwrap();
    assert_eq!(
        *rec.0.lock().unwrap(),
        ["apply a", "apply b"],
        "c never ran"
    );
    let reason = p.refusing().expect("refusing").to_owned();
    assert!(reason.contains("No space left"), "{reason}");
    match p.heartbeat() {
        PlugEvent::Heartbeat { refusing, busy, .. } => {
            assert_eq!(refusing.as_deref(), Some(reason.as_str()));
            assert_eq!(busy, None);
        }
        other => panic!("{other:?}"),
    }
    // A new order is refused without running anything.
    p.on_order(order("c2", vec![run("x")]), &mut |e| out.push(e))
        .unwrap();
    assert_eq!(rec.0.lock().unwrap().len(), 2);
    // Still full: retrying changes nothing.
    let later = std::time::Instant::now() + std::time::Duration::from_secs(1);
    assert!(!p.retry_journal(later, &mut |e| out.push(e)));
    assert!(p.refusing().is_some());
    // Room again: the cut change is rolled back from the journal.
    *j.room.lock().unwrap() = None;
    let later = later + std::time::Duration::from_secs(1);
    assert!(p.retry_journal(later, &mut |e| out.push(e)));
    assert_eq!(p.refusing(), None);
    assert_eq!(
        *rec.0.lock().unwrap(),
        ["apply a", "apply b", "undo b", "undo a"]
    );
    assert_eq!(
        outcome(&out),
        Some(Outcome::RolledBack {
            failed_step: None,
            interrupted: true,
            stopped: false
        })
    );
    // The refused order, sent again, runs.
    p.on_order(order("c2", vec![run("x")]), &mut |e| out.push(e))
        .unwrap();
    assert_eq!(rec.0.lock().unwrap().last().unwrap(), "apply x");
    assert_eq!(outcome(&out), Some(Outcome::Succeeded));
    // Numbered without a gap across the failure (resends aside).
    let mut seqs: Vec<u64> = out
        .iter()
        .filter_map(|e| match e {
            PlugEvent::Report(r) => Some(r.seq),
            _ => None,
        })
        .collect();
    seqs.sort_unstable();
    seqs.dedup();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

/// A plug on a `Filling` journal with room for `room` records, given its
/// incarnation (the first record).
fn filling_plug(rec: &Recorder, j: &Filling, stash: &Path, room: usize) -> Plug {
    let mut p = Plug::new(
        "h",
        Default::default(),
        Box::new(rec.clone()),
        Box::new(j.clone()),
        stash,
    );
    p.recover(&mut |_| {}).unwrap();
    assert!(p.on_incarnation("h", 7).unwrap());
    *j.room.lock().unwrap() = Some(room);
    p
}

/// Gives a full journal room again and lets the plug retry.
fn room_again(p: &mut Plug, j: &Filling, out: &mut Vec<PlugEvent>) {
    assert!(p.refusing().is_some());
    *j.room.lock().unwrap() = None;
    let later = std::time::Instant::now() + std::time::Duration::from_secs(1);
    assert!(p.retry_journal(later, &mut |e| out.push(e)));
    assert_eq!(p.refusing(), None);
}

#[test]
fn a_change_whose_last_result_could_not_be_journaled_is_reported_as_it_ran() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, j) = (Recorder::default(), Filling::default());
    // Room for: incarnation, order, Accepted, started 0, finished 0 — the
    // change ran whole; its `Finished` cannot be journaled.
    let mut p = filling_plug(&rec, &j, dir.path(), 5);
    let mut out = Vec::new();
    p.on_order(order("c1", vec![run("a")]), &mut |e| out.push(e))
        .unwrap();
    assert_eq!(outcome(&out), None, "nothing said before it is journaled");
    room_again(&mut p, &j, &mut out);
    assert_eq!(*rec.0.lock().unwrap(), ["apply a"], "nothing undone");
    assert_eq!(outcome(&out), Some(Outcome::Succeeded));
}

#[test]
fn a_failed_command_whose_result_could_not_be_journaled_is_not_undone() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, j) = (Recorder::default(), Filling::default());
    // Room for: incarnation, order, Accepted, started 0, finished 0,
    // started 1 — the command fails, its result cannot be journaled.
    let mut p = filling_plug(&rec, &j, dir.path(), 6);
    let mut out = Vec::new();
    p.on_order(order("c1", vec![run("a"), run("fail")]), &mut |e| {
        out.push(e)
    })
    .unwrap();
    room_again(&mut p, &j, &mut out);
    // The step's real result is reported, and a failed command is not
    // undone (its undo is for a command that succeeded).
    let failed = out.iter().any(|e| {
        matches!(e, PlugEvent::Report(r) if matches!(
            &r.kind,
            ReportKind::StepFinished { step: 1, result } if !result.ok
        ))
    });
    assert!(failed, "{out:?}");
    assert_eq!(*rec.0.lock().unwrap(), ["apply a", "apply fail", "undo a"]);
    assert_eq!(
        outcome(&out),
        Some(Outcome::RolledBack {
            failed_step: Some(1),
            interrupted: true,
            stopped: false
        })
    );
}

/// A driver that asks the plug to stop while its first step runs (SIGTERM).
struct StopsDuring {
    rec: Recorder,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Driver for StopsDuring {
    fn name(&self) -> &'static str {
        "stops-during"
    }
    fn prepare(&mut self, _: &Action, _: &Path) -> Result<(), DriverError> {
        Ok(())
    }
    fn apply(&mut self, a: &Action, p: &Path) -> StepResult {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.rec.apply(a, p)
    }
    fn undo(&mut self, a: &Action, p: &Path) -> StepResult {
        self.rec.undo(a, p)
    }
}

#[test]
fn a_stop_during_a_step_lets_it_finish_starts_no_other_and_rolls_back_as_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, j) = (Recorder::default(), Shared::default());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let driver = StopsDuring {
        rec: rec.clone(),
        stop: stop.clone(),
    };
    let mut p = Plug::new(
        "h",
        Default::default(),
        Box::new(driver),
        Box::new(j.clone()),
        dir.path(),
    )
    .stop_on(stop.clone());
    assert!(p.on_incarnation("h", 7).unwrap());
    let mut out = Vec::new();
    p.on_order(order("c1", vec![run("a"), run("b")]), &mut |e| out.push(e))
        .unwrap();
    assert_eq!(*rec.0.lock().unwrap(), ["apply a", "undo a"], "b never ran");
    assert_eq!(
        outcome(&out),
        Some(Outcome::RolledBack {
            failed_step: None,
            interrupted: false,
            stopped: true
        })
    );
    // Stopping, it refuses orders (not journaled: sent again after the
    // restart) and says so.
    let before = j.0.lock().unwrap().load().unwrap().len();
    p.on_order(order("c2", vec![run("x")]), &mut |e| out.push(e))
        .unwrap();
    assert_eq!(rec.0.lock().unwrap().len(), 2);
    assert_eq!(j.0.lock().unwrap().load().unwrap().len(), before);
    match p.heartbeat() {
        PlugEvent::Heartbeat { refusing, .. } => {
            assert_eq!(refusing.as_deref(), Some(crate::plug::STOPPING))
        }
        other => panic!("{other:?}"),
    }
}

/// `drive` from a scripted inbox: each call hands over the next batch of
/// messages; once the script is done, the stop flag is set.
fn scripted(
    mut script: std::collections::VecDeque<Vec<vigie_wire::tower::Published>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> impl FnMut(crate::Handler<'_>) -> Result<(), crate::PlugError> {
    move |handle| {
        match script.pop_front() {
            Some(batch) => batch.into_iter().try_for_each(&mut *handle)?,
            None => stop.store(true, std::sync::atomic::Ordering::Relaxed),
        }
        Ok(())
    }
}

#[test]
fn drive_runs_orders_keeps_the_heartbeat_current_and_ends_once_its_reports_are_acked() {
    use vigie_wire::tower::Published;
    let dir = tempfile::tempdir().unwrap();
    let (rec, j) = (Recorder::default(), Shared::default());
    let mut p = plug(&rec, &j, dir.path());
    p.recover(&mut |_| {}).unwrap();
    let beat = crate::HeartbeatSnapshot::new(&p);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let script = [
        vec![Published::Incarnation {
            host: "h".into(),
            incarnation: 3,
        }],
        vec![Published::Order(order("c1", vec![run("a")]))],
    ];
    let mut inbox = scripted(script.into_iter().collect(), stop.clone());
    // Once stopped, the flush takes the acknowledgement of everything.
    let mut acked = false;
    let inbox = |handle: crate::Handler<'_>| {
        if stop.load(std::sync::atomic::Ordering::Relaxed) && !acked {
            acked = true;
            return handle(Published::ReportAck {
                host: "h".into(),
                upto: u64::MAX,
            });
        }
        inbox(handle)
    };
    // What the beating thread would have said as each report went out.
    let mut said = Vec::new();
    let watch = beat.clone();
    let started = std::time::Instant::now();
    crate::drive(&mut p, &beat, &stop, inbox, &mut |e| {
        if let (PlugEvent::Report(_), PlugEvent::Heartbeat { busy, .. }) = (&e, watch.beat(false)) {
            said.push(busy);
        }
    })
    .unwrap();
    assert!(started.elapsed() < crate::FLUSH_FOR, "acked: no wait");
    assert_eq!(p.unacked(), 0);
    assert_eq!(*rec.0.lock().unwrap(), ["apply a"]);
    // Busy from `Accepted` (the first report) to `Finished` (the last).
    assert_eq!(said.first(), Some(&Some("c1".to_owned())));
    assert_eq!(said.last(), Some(&None));
    match beat.beat(true) {
        PlugEvent::Heartbeat {
            incarnation,
            busy,
            refusing,
            ..
        } => {
            assert_eq!((incarnation, busy), (3, None));
            assert_eq!(refusing.as_deref(), Some(crate::plug::STOPPING));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn drive_ends_with_the_inbox_s_error() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, j) = (Recorder::default(), Shared::default());
    let mut p = plug(&rec, &j, dir.path());
    p.recover(&mut |_| {}).unwrap();
    let beat = crate::HeartbeatSnapshot::new(&p);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let r = crate::drive(
        &mut p,
        &beat,
        &stop,
        |_| Err(crate::PlugError::Zmq(zmq::Error::ETERM)),
        &mut |_| {},
    );
    assert!(
        matches!(r, Err(crate::PlugError::Zmq(zmq::Error::ETERM))),
        "{r:?}"
    );
}

/// The journal is compacted every `COMPACT_EVERY` changes: over many
/// changes its file stays about the size it had before the first
/// compaction, and an order of a change folded long ago is still refused
/// as a replay — by the running plug and after a restart — while a new
/// one runs.
#[test]
fn a_compacted_journal_stays_small_and_still_refuses_a_replay() {
    use crate::plug::COMPACT_EVERY;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal");
    let rec = Recorder::default();
    let open = || {
        let j = crate::journal::FileJournal::open(&path).unwrap();
        Plug::new(
            "h",
            Default::default(),
            Box::new(rec.clone()),
            Box::new(j),
            dir.path(),
        )
    };
    let numbered = |seq: u64| {
        let mut o = order(&format!("c{seq}"), vec![run("ok")]);
        o.seq = seq;
        o
    };
    let mut p = open();
    p.recover(&mut |_| {}).unwrap();
    assert!(p.on_incarnation("h", 7).unwrap());
    let changes = 3 * COMPACT_EVERY as u64;
    let mut sizes = Vec::new();
    for seq in 1..=changes {
        let mut last = 0;
        p.on_order(numbered(seq), &mut |e| {
            if let PlugEvent::Report(r) = e {
                last = r.seq;
            }
        })
        .unwrap();
        p.on_ack(last).unwrap();
        sizes.push(std::fs::metadata(&path).unwrap().len());
    }
    let applied = |rec: &Recorder| rec.0.lock().unwrap().len();
    assert_eq!(applied(&rec), changes as usize, "every change ran once");
    let first_cycle = sizes[..COMPACT_EVERY].iter().max().copied().unwrap();
    let worst = sizes.iter().max().copied().unwrap();
    // Longer ids and numbers later on: a little more, never a cycle more.
    assert!(
        worst <= first_cycle + first_cycle / 4,
        "the journal grew past its first cycle's size: {worst} > {first_cycle} bytes"
    );
    assert!(
        *sizes.last().unwrap() < first_cycle / 4 || sizes.len() % COMPACT_EVERY != 0,
        "just compacted, the journal is small: {} bytes",
        sizes.last().unwrap()
    );
    // Replays of folded changes, then after a restart.
    let mut out = Vec::new();
    p.on_order(numbered(5), &mut |e| out.push(e)).unwrap();
    p.on_order(numbered(changes), &mut |e| out.push(e)).unwrap();
    assert!(out.is_empty(), "a replay is refused: {out:?}");
    assert_eq!(applied(&rec), changes as usize, "nothing ran again");
    drop(p);
    let mut p = open();
    p.recover(&mut |e| out.push(e)).unwrap();
    p.on_order(numbered(7), &mut |e| out.push(e)).unwrap();
    p.on_order(numbered(changes), &mut |e| out.push(e)).unwrap();
    assert!(out.is_empty(), "after a restart too: {out:?}");
    assert_eq!(applied(&rec), changes as usize, "nothing ran again");
    p.on_order(numbered(changes + 1), &mut |e| out.push(e))
        .unwrap();
    assert_eq!(applied(&rec), changes as usize + 1, "a new change runs");
    let seqs: Vec<u64> = out
        .iter()
        .filter_map(|e| match e {
            PlugEvent::Report(r) => Some(r.seq),
            _ => None,
        })
        .collect();
    assert!(
        seqs.first().is_some_and(|s| *s > 3 * changes),
        "reports go on numbered after the compacted ones: {seqs:?}"
    );
}
