//! The referee's state machine on the in-memory store (`shell/mem_store.rs`, no Escalator started).

use std::time::{Duration, Instant};

use vigie_wire::change::StepResult;
use vigie_wire::tower::{ApiAnswer, ApiCall, Caller, ChangeState, Published, Report, ReportKind};

use crate::core::state::Core;
use crate::core::turn::Turn;
use crate::shell::store::Store;

fn caller() -> Caller {
    Caller::internal("default", "t")
}

fn spec() -> vigie_wire::change::ChangeSpec {
    vigie_changes::parse_change("t.yml", "title: t\nsteps:\n  - run: a\n  - run: b\n").unwrap()
}

struct Fixture {
    store: crate::shell::test_store::TestStore,
    tower: Core,
    now: Instant,
}

fn fixture() -> Fixture {
    let store = crate::shell::test_store::store();
    Fixture {
        tower: store.tower(),
        store,
        now: Instant::now(),
    }
}

impl Fixture {
    fn beat(&mut self, host: &str, inc: u64, busy: Option<&str>) -> Turn {
        let mut t = Turn::started();
        let beat = crate::core::handlers::events::Beat {
            incarnation: inc,
            labels: Default::default(),
            busy,
            refusing: None,
        };
        crate::core::handlers::events::heartbeat(&mut self.tower, host, beat, self.now, &mut t);
        t
    }

    fn submit(&mut self, target: &str) -> Vec<String> {
        let mut t = Turn::started();
        let call = ApiCall::Submit {
            spec: spec(),
            target: target.into(),
        };
        let answer = crate::shell::history::api(
            &mut self.tower,
            &caller(),
            call,
            &self.store.db,
            self.now,
            &mut t,
        )
        .unwrap();
        self.store(t);
        match answer {
            ApiAnswer::Submitted(v) => v.into_iter().map(|v| v.id).collect(),
            other => panic!("{other:?}"),
        }
    }

    fn report(&mut self, host: &str, inc: u64, seq: u64, change: &str, kind: ReportKind) -> Turn {
        let mut t = Turn::started();
        let r = Report {
            host: host.into(),
            incarnation: inc,
            seq,
            change: change.into(),
            at_ms: 0,
            kind,
        };
        crate::core::handlers::events::report(&mut self.tower, r, self.now, &mut t);
        t
    }

    fn state(&self, id: &str) -> Option<ChangeState> {
        self.tower.queues().change(id).map(|c| c.view.state)
    }
}

fn orders(t: &Turn) -> usize {
    t.publish
        .iter()
        .filter(|(_, p)| matches!(p, Published::Order(_)))
        .count()
}

#[test]
fn a_report_for_a_change_not_in_flight_is_refused_and_its_number_consumed() {
    let mut f = fixture();
    f.beat("h", 1, None);
    let ids = f.submit("h");
    let queued = f.submit("h");
    let t = f.report("h", 1, 1, &queued[0], ReportKind::StepStarted { step: 0 });
    assert_eq!(
        f.state(&queued[0]),
        Some(ChangeState::Queued),
        "a queued change cannot start"
    );
    assert!(
        t.acks.contains("h"),
        "the report's number is used up and acknowledged"
    );
    f.report("h", 1, 2, &ids[0], ReportKind::Accepted);
    f.report("h", 1, 3, &ids[0], ReportKind::StepStarted { step: 0 });
    assert_eq!(f.state(&ids[0]), Some(ChangeState::Running { step: 0 }));
    // Out of order: ignored until the gap is filled.
    f.report("h", 1, 5, &ids[0], ReportKind::StepStarted { step: 1 });
    assert_eq!(f.state(&ids[0]), Some(ChangeState::Running { step: 0 }));
}

#[test]
fn a_host_with_a_new_journal_ends_its_running_change_and_numbers_from_one() {
    let mut f = fixture();
    f.beat("h", 10, None);
    let ids = f.submit("h");
    f.report("h", 10, 1, &ids[0], ReportKind::Accepted);
    f.report("h", 10, 2, &ids[0], ReportKind::StepStarted { step: 0 });
    let next = f.submit("h");
    // The host was reinstalled: its new journal is a later incarnation.
    let t = f.beat("h", 20, None);
    assert_eq!(
        f.tower.queues().change(&ids[0]).map(|c| c.view.state),
        Some(ChangeState::RollbackFailed {
            failed_step: None,
            interrupted: true,
            stopped: false
        })
    );
    assert_eq!(orders(&t), 1, "the next change is dispatched");
    f.report("h", 20, 1, &next[0], ReportKind::Accepted);
    assert!(
        f.tower
            .queues()
            .change(&next[0])
            .is_some_and(|c| c.accepted),
        "numbering restarted at 1"
    );
    // A late message of the old journal changes nothing.
    f.report("h", 10, 3, &next[0], ReportKind::StepStarted { step: 0 });
    assert_eq!(f.state(&next[0]), Some(ChangeState::Dispatched));
}

#[test]
fn a_heartbeat_showing_the_change_running_stops_order_resends() {
    let mut f = fixture();
    f.beat("h", 1, None);
    let ids = f.submit("h");
    f.now += Duration::from_secs(2);
    let mut t = Turn::started();
    f.tower.tick(f.now, &mut t);
    assert_eq!(orders(&t), 1, "unacknowledged: sent again");
    f.beat("h", 1, Some(&ids[0]));
    f.now += Duration::from_secs(2);
    let mut t = Turn::started();
    f.tower.tick(f.now, &mut t);
    assert_eq!(orders(&t), 0, "the plug has it");
}

/// A fleet too busy to acknowledge its orders is not sent more of them:
/// each resend waits twice as long as the one before (1, 2, 4, 8 s, then
/// 16 s), and a host back from silence gets its order after the first
/// delay again.
#[test]
fn unacknowledged_orders_are_resent_less_and_less_often() {
    let mut f = fixture();
    f.beat("h", 1, None);
    f.submit("h");
    let mut sent_at = Vec::new();
    let mut second = |f: &mut Fixture, n: u64, beat: bool| {
        f.now += Duration::from_secs(1);
        let b = if beat {
            orders(&f.beat("h", 1, None))
        } else {
            0
        };
        let mut t = Turn::started();
        f.tower.tick(f.now, &mut t);
        if b + orders(&t) > 0 {
            sent_at.push(n);
        }
    };
    for n in 1..=16 {
        second(&mut f, n, true);
    }
    // Silent past the host timeout (offline), then beating again.
    for n in 17..=24 {
        second(&mut f, n, n > 21);
    }
    assert_eq!(
        sent_at,
        [1, 3, 7, 15, 22, 24],
        "resent after 1, 2, 4, 8 s; back from silence, after 1 s (not 16), then 2 s"
    );
}

#[test]
fn report_texts_are_bounded() {
    let mut r = Report {
        host: "h".into(),
        incarnation: 1,
        seq: 1,
        change: "c1".into(),
        at_ms: 0,
        kind: ReportKind::StepFinished {
            step: 0,
            result: StepResult {
                stdout_tail: "x".repeat(1 << 20),
                summary: "é".repeat(100_000),
                ..StepResult::default()
            },
        },
    };
    crate::core::handlers::events::bound(&mut r);
    let ReportKind::StepFinished { result, .. } = r.kind else {
        unreachable!()
    };
    assert!(result.stdout_tail.len() <= 4096 && result.summary.len() <= 4096);
    assert!(result.summary.chars().all(|c| c == 'é'));
}

fn issued(t: &Turn) -> Option<u64> {
    t.publish.iter().find_map(|(_, p)| match p {
        Published::Incarnation { incarnation, .. } => Some(*incarnation),
        _ => None,
    })
}

#[test]
fn a_reinstalled_host_whose_clock_is_behind_is_handed_an_incarnation_and_comes_back() {
    let mut f = fixture();
    // The old journal numbered itself from a clock far ahead.
    f.beat("h", 1_900_000_000_000, None);
    let ids = f.submit("h");
    f.report("h", 1_900_000_000_000, 1, &ids[0], ReportKind::Accepted);
    // Reinstalled: a new journal asks for an incarnation and is not online
    // until it uses one.
    let t = f.beat("h", 0, None);
    let given = issued(&t).expect("an incarnation is handed out");
    assert!(given > 1_900_000_000_000, "above every earlier one");
    assert!(
        !f.tower.hosts()["h"].online,
        "nothing is dispatched to it yet"
    );
    assert_eq!(orders(&t), 0);
    // The hand-out was lost: asking again gets the same number.
    assert_eq!(issued(&f.beat("h", 0, None)), Some(given));
    let next = f.submit("h");
    let t = f.beat("h", given, None);
    assert!(f.tower.hosts()["h"].online, "back online with it");
    assert_eq!(
        f.state(&ids[0]),
        Some(ChangeState::RollbackFailed {
            failed_step: None,
            interrupted: true,
            stopped: false
        }),
        "the change the old journal had is over (not run again)"
    );
    assert_eq!(orders(&t), 1, "the next change is dispatched");
    f.report("h", given, 1, &next[0], ReportKind::Accepted);
    assert!(f
        .tower
        .queues()
        .change(&next[0])
        .is_some_and(|c| c.accepted));
    // Reinstalled once more: the next number, not the used one.
    assert_eq!(issued(&f.beat("h", 0, None)), Some(given + 1));
}

impl Fixture {
    /// A call, its turn finished and stored as the server would.
    fn call(&mut self, call: ApiCall) -> (Result<ApiAnswer, vigie_wire::tower::ApiFault>, Turn) {
        let mut t = Turn::started();
        let r = crate::shell::history::api(
            &mut self.tower,
            &caller(),
            call,
            &self.store.db,
            self.now,
            &mut t,
        );
        let t = self.store(t);
        (r, t)
    }

    fn store(&mut self, mut t: Turn) -> Turn {
        self.store.commit(&mut self.tower, &mut t);
        t
    }

    fn fault(&mut self, call: ApiCall) -> vigie_wire::tower::ApiFaultKind {
        self.call(call).0.unwrap_err().kind
    }
}

fn order_for(t: &Turn) -> Option<String> {
    t.publish.iter().find_map(|(_, p)| match p {
        Published::Order(o) => Some(o.change.clone()),
        _ => None,
    })
}

#[test]
fn an_abandoned_change_is_never_sent_again_and_its_late_reports_keep_the_numbering() {
    use vigie_wire::tower::ApiFaultKind;
    let mut f = fixture();
    f.beat("h", 1, None);
    let ids = f.submit("h");
    let next = f.submit("h");
    f.report("h", 1, 1, &ids[0], ReportKind::Accepted);
    f.report("h", 1, 2, &ids[0], ReportKind::StepStarted { step: 0 });
    // Only an in-flight change can be abandoned; a running one not cancelled.
    let abandon = |change: &str, hold| ApiCall::Abandon {
        change: change.into(),
        hold,
    };
    assert_eq!(f.fault(abandon(&next[0], false)), ApiFaultKind::Conflict);
    assert_eq!(
        f.fault(ApiCall::Cancel {
            change: ids[0].clone()
        }),
        ApiFaultKind::Conflict
    );
    let (r, t) = f.call(abandon(&ids[0], true));
    let ApiAnswer::Changes(v) = r.unwrap() else {
        panic!("changes")
    };
    assert_eq!(v[0].state, ChangeState::Abandoned);
    assert!(v[0].state.is_final());
    assert_eq!(order_for(&t), None, "held: the next change waits");
    assert!(
        t.writes.is_empty() && f.store.db.get(b"change/c1").unwrap().is_some(),
        "stored with the turn"
    );
    f.now += Duration::from_secs(5);
    f.beat("h", 1, Some(&ids[0]));
    let mut t = Turn::started();
    f.tower.tick(f.now, &mut t);
    assert_eq!(order_for(&t), None, "held, even online");

    // The plug comes back and still reports the abandoned change: each
    // report is consumed and acknowledged, nothing is applied.
    let t = f.report(
        "h",
        1,
        3,
        &ids[0],
        ReportKind::Finished {
            outcome: vigie_wire::tower::Outcome::Succeeded,
        },
    );
    assert!(t.acks.contains("h"));
    assert_eq!(f.tower.hosts()["h"].rec.report_seq, 3);
    assert!(f.state(&ids[0]).is_none(), "not in flight any more");

    let (r, t) = f.call(ApiCall::HostRelease { host: "h".into() });
    r.unwrap();
    assert_eq!(order_for(&t), Some(next[0].clone()), "released: moves on");
    assert!(
        !orders_of(&t).contains(&ids[0]),
        "the abandoned change is never ordered again"
    );
    f.report("h", 1, 4, &next[0], ReportKind::Accepted);
    assert!(
        f.tower
            .queues()
            .change(&next[0])
            .is_some_and(|c| c.accepted),
        "numbering continues without a gap"
    );
    let (r, _) = f.call(ApiCall::Audit {
        host: None,
        change: Some(ids[0].clone()),
        limit: 100,
        filter: Default::default(),
    });
    let ApiAnswer::Audit(records) = r.unwrap() else {
        panic!("audit")
    };
    assert!(records.iter().any(|r| r.action == "abandoned"));
}

fn orders_of(t: &Turn) -> Vec<String> {
    t.publish
        .iter()
        .filter_map(|(_, p)| match p {
            Published::Order(o) => Some(o.change.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_finished_change_is_retried_as_a_new_one_and_a_host_with_work_is_removed_only_by_force() {
    use vigie_wire::tower::ApiFaultKind;
    let mut f = fixture();
    f.beat("h", 1, None);
    let ids = f.submit("h");
    let retry = |c: &str| ApiCall::Retry { change: c.into() };
    assert_eq!(
        f.fault(retry(&ids[0])),
        ApiFaultKind::Conflict,
        "not finished"
    );
    f.report("h", 1, 1, &ids[0], ReportKind::Accepted);
    let t = f.report(
        "h",
        1,
        2,
        &ids[0],
        ReportKind::Finished {
            outcome: vigie_wire::tower::Outcome::RolledBack {
                failed_step: Some(0),
                interrupted: false,
                stopped: false,
            },
        },
    );
    f.store(t);
    let (r, _) = f.call(retry(&ids[0]));
    let ApiAnswer::Submitted(v) = r.unwrap() else {
        panic!("submitted")
    };
    assert_ne!(v[0].id, ids[0]);
    assert_eq!((v[0].host.as_str(), v[0].steps.len()), ("h", 2));
    let queued = f.submit("h");

    let remove = |force| ApiCall::HostRemove {
        host: "h".into(),
        force,
    };
    assert_eq!(f.fault(remove(false)), ApiFaultKind::Conflict);
    assert!(f.tower.hosts().contains("h"), "refused: nothing changed");
    f.call(remove(true)).0.unwrap();
    assert!(!f.tower.hosts().contains("h"));
    let ended: Vec<ChangeState> = [&v[0].id, &queued[0]]
        .iter()
        .map(|id| {
            f.tower
                .queues()
                .recent()
                .iter()
                .find(|c| &c.id == *id)
                .map(|c| c.state)
                .unwrap()
        })
        .collect();
    assert_eq!(
        ended,
        vec![ChangeState::Abandoned, ChangeState::Cancelled],
        "the dispatched one abandoned, the queued one cancelled"
    );
    assert!(
        f.store.db.get(b"host/h").unwrap().is_none(),
        "forgotten for good"
    );
}

/// Registers `n` hosts (offline: their changes stay queued) in one stored
/// turn.
fn add_hosts(f: &mut Fixture, n: usize) -> Vec<String> {
    let mut t = Turn::started();
    let hosts: Vec<String> = (0..n).map(|i| format!("host-{i:05}")).collect();
    for h in &hosts {
        let call = ApiCall::HostAdd {
            host: h.clone(),
            labels: [("fleet".to_owned(), "all".to_owned())].into(),
        };
        crate::shell::history::api(&mut f.tower, &caller(), call, &f.store.db, f.now, &mut t)
            .unwrap();
    }
    f.tower.finish_turn(&mut t);
    crate::shell::server::commit(&f.store.db, &mut t).unwrap();
    hosts
}

/// Submits as the referee's loop does: the call, the turn's end, one
/// batch. Returns the answer, and whether the batch was stored.
fn submit_stored(
    f: &mut Fixture,
    spec: vigie_wire::change::ChangeSpec,
) -> (Result<usize, vigie_wire::tower::ApiFault>, Turn) {
    let mut t = Turn::started();
    let call = ApiCall::Submit {
        spec,
        target: "fleet=all".into(),
    };
    let answer =
        crate::shell::history::api(&mut f.tower, &caller(), call, &f.store.db, f.now, &mut t);
    let answer = answer.map(|a| match a {
        ApiAnswer::Submitted(v) => {
            // The answer goes back in one frame.
            let reply = vigie_wire::tower::ApiReply {
                id: 1,
                body: Ok(ApiAnswer::Submitted(v.clone())),
            };
            vigie_wire::encode(&reply).expect("the answer fits a frame");
            v.len()
        }
        other => panic!("{other:?}"),
    });
    f.tower.finish_turn(&mut t);
    let stored = crate::shell::server::commit(&f.store.db, &mut t);
    assert!(
        stored.is_ok(),
        "the turn's batch was refused, which stops the referee: {stored:?}"
    );
    (answer, t)
}

#[test]
fn the_largest_submissions_the_limits_allow_are_stored_in_one_batch_or_refused_whole() {
    let mut f = fixture();
    let hosts = add_hosts(&mut f, crate::core::submission::MAX_SUBMIT_HOSTS);
    // The largest program: a file step whose content fills the value
    // limit, to every host.
    let big = vigie_wire::limits::MAX_VALUE - 4 * 1024;
    let yaml = format!(
        "title: big\nsteps:\n  - file: /big\n    content: \"{}\"\n",
        "x".repeat(big)
    );
    let spec_big = vigie_changes::parse_change("big.yml", &yaml).unwrap();
    let (answer, _) = submit_stored(&mut f, spec_big);
    let stored = answer.expect("a big program is stored once, whatever the hosts");
    assert_eq!(stored, hosts.len());
    // What a turn counts for a change record is a bound on its size.
    for rec in f.tower.queues().changes().take(10) {
        assert!(crate::core::codec::encode(rec).len() <= rec.size_bound());
    }
    // A title (copied into every change and its audit record) as big as
    // the value limit allows: never a batch Escalator refuses.
    for title_len in [64 * 1024, 1024 * 1024, big] {
        let mut spec = spec();
        spec.title = "t".repeat(title_len);
        let before = f.tower.queues().pending();
        let (answer, t) = submit_stored(&mut f, spec);
        match answer {
            Ok(n) => assert_eq!(n, hosts.len()),
            Err(e) => {
                assert_eq!(e.kind, vigie_wire::tower::ApiFaultKind::Invalid, "{e}");
                assert!(e.message.contains("bytes"), "{e}");
                assert_eq!(f.tower.queues().pending(), before, "nothing queued");
                assert!(t.publish.is_empty(), "nothing announced");
            }
        }
    }
    // Many steps with long names (copied into every change) likewise.
    let mut many = spec();
    many.steps = (0..2_000)
        .map(|i| {
            let mut s = spec().steps[0].clone();
            s.name = format!("{i}-{}", "n".repeat(1_000));
            s
        })
        .collect();
    let (answer, _) = submit_stored(&mut f, many);
    assert!(answer.is_err() || answer == Ok(hosts.len()));
    // 5,000 copies of a 64 KiB title cannot be one batch: refused, and a
    // normal submission to the same hosts is stored after it.
    let mut long = spec();
    long.title = "t".repeat(64 * 1024);
    assert!(submit_stored(&mut f, long).0.is_err());
    assert_eq!(submit_stored(&mut f, spec()).0, Ok(hosts.len()));
    // The referee goes on: what was stored is all there after a restart.
    let timing = f.tower.timing();
    let again = crate::shell::load::tower(&f.store.db, timing).unwrap();
    assert_eq!(again.queues().pending(), f.tower.queues().pending());
}

#[test]
fn a_large_program_to_many_online_hosts_goes_out_over_several_turns() {
    let mut f = fixture();
    let n = 40;
    for i in 0..n {
        f.beat(&format!("on-{i:02}"), 1, None);
    }
    let yaml = format!(
        "title: big\nsteps:\n  - file: /big\n    content: \"{}\"\n",
        "x".repeat(vigie_wire::limits::MAX_VALUE - 4 * 1024)
    );
    let mut t = Turn::started();
    let call = ApiCall::Submit {
        spec: vigie_changes::parse_change("big.yml", &yaml).unwrap(),
        target: "on-*".into(),
    };
    crate::shell::history::api(&mut f.tower, &caller(), call, &f.store.db, f.now, &mut t).unwrap();
    let first = orders(&t);
    assert!(first > 0, "some go out at once");
    assert!(
        first * vigie_wire::limits::MAX_VALUE
            <= crate::core::state::TURN_MAX_ORDER_BYTES + vigie_wire::limits::MAX_VALUE,
        "{first} copies of a 4 MiB program in one turn"
    );
    let mut sent = first;
    for _ in 0..n {
        if sent == n {
            break;
        }
        let mut t = Turn::started();
        f.now += Duration::from_millis(150);
        f.tower.tick(f.now, &mut t);
        sent += orders(&t);
    }
    assert_eq!(sent, n, "every host got its order over the next ticks");
}

/// A change's state and its steps' statuses.
type StoredChange = (ChangeState, Vec<vigie_wire::tower::StepStatus>);
/// A host's report number, incarnation and queue (sequence, change).
type StoredHost = (u64, u64, Vec<(u64, String)>);
/// A simulated plug: its next report number, and the change it runs with
/// the reports it has still to send.
type SimPlug = (u64, Option<(String, Vec<ReportKind>)>);

/// What the referee's storage must give back at a turn boundary: every
/// record a restart rebuilds from (in-memory liveness aside).
#[derive(Debug, PartialEq)]
struct Stored {
    changes: std::collections::BTreeMap<String, StoredChange>,
    hosts: std::collections::BTreeMap<String, StoredHost>,
    next_seq: u64,
    audit: (u64, String),
}

fn stored(t: &Core) -> Stored {
    let mut changes = std::collections::BTreeMap::new();
    for v in t
        .queues()
        .recent()
        .iter()
        .chain(t.queues().changes().map(|c| &c.view))
    {
        let steps = v.steps.iter().map(|s| s.status).collect();
        changes.insert(v.id.clone(), (v.state, steps));
    }
    let hosts = t
        .hosts()
        .values()
        .map(|h| {
            let id = &h.rec.id;
            let queue = t.queues().queue(id).map(|(s, c)| (*s, c.clone())).collect();
            (id.clone(), (h.rec.report_seq, h.rec.incarnation, queue))
        })
        .collect();
    Stored {
        changes,
        hosts,
        next_seq: t.queues().next_seq(),
        audit: (t.audit_head().last_seq, t.audit_head().last_hash.clone()),
    }
}

/// The referee's state on the store, checked at every crash point
/// a referee has (a turn is one batch: a crash keeps the turns stored
/// before it, loses the one in progress). A workload of submissions,
/// cancellations and plug reports (failures and rollbacks included) runs
/// on a tower rebuilt from storage before every turn; each rebuild must
/// equal the tower that stored it. At the end: every change is final,
/// no id was handed out twice, each host ran its changes in sequence
/// order, one at a time, no report was refused, and the audit chain holds.
#[test]
fn the_referees_state_survives_a_crash_at_every_turn_boundary() {
    let mut f = fixture();
    let hosts = ["h1", "h2", "h3"];
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // Each simulated plug: its next report number and the change it runs
    // with the reports still to send.
    let mut plugs: std::collections::BTreeMap<&str, SimPlug> =
        hosts.iter().map(|h| (*h, (1, None))).collect();
    let mut ids = std::collections::BTreeSet::new();
    let mut ran: std::collections::BTreeMap<String, Vec<u64>> = Default::default();
    let mut submitted = 0;
    for turn_no in 0..600 {
        if turn_no >= 120 && f.tower.queues().pending() == 0 {
            break;
        }
        // A crash here, then a restart: the tower is what storage says.
        let before = stored(&f.tower);
        f.tower = crate::shell::load::tower(&f.store.db, f.tower.timing()).unwrap();
        assert_eq!(
            stored(&f.tower),
            before,
            "turn {turn_no}: rebuilt state differs"
        );
        let mut t = Turn::started();
        for h in hosts {
            let busy = plugs[h].1.as_ref().map(|(c, _)| c.clone());
            let beat = crate::core::handlers::events::Beat {
                incarnation: 1,
                labels: Default::default(),
                busy: busy.as_deref(),
                refusing: None,
            };
            crate::core::handlers::events::heartbeat(&mut f.tower, h, beat, f.now, &mut t);
        }
        if turn_no < 120 && next(3) == 0 {
            let target = ["h1", "h2", "h3", "h*"][next(4) as usize];
            if let Ok(ApiAnswer::Submitted(v)) = crate::shell::history::api(
                &mut f.tower,
                &caller(),
                ApiCall::Submit {
                    spec: spec(),
                    target: target.into(),
                },
                &f.store.db,
                f.now,
                &mut t,
            ) {
                for c in v {
                    assert!(ids.insert(c.id.clone()), "id {} handed out twice", c.id);
                    submitted += 1;
                }
            }
        }
        if next(10) == 0 {
            // Cancel whatever is queued last on some host.
            let h = hosts[next(3) as usize];
            let last = f.tower.queues().queue(h).last().map(|(_, id)| id.clone());
            if let Some(id) = last {
                let _ = crate::shell::history::api(
                    &mut f.tower,
                    &caller(),
                    ApiCall::Cancel { change: id },
                    &f.store.db,
                    f.now,
                    &mut t,
                );
            }
        }
        // Each plug sends its next report.
        for h in hosts {
            let (seq, running) = plugs.get_mut(h).unwrap();
            let Some((change, left)) = running else {
                continue;
            };
            let kind = left.remove(0);
            let r = Report {
                host: h.into(),
                incarnation: 1,
                seq: *seq,
                change: change.clone(),
                at_ms: 0,
                kind,
            };
            *seq += 1;
            crate::core::handlers::events::report(&mut f.tower, r, f.now, &mut t);
            if left.is_empty() {
                *running = None;
            }
        }
        f.now += Duration::from_millis(100);
        f.tower.tick(f.now, &mut t);
        // Orders go out after the commit; a plug takes the one for it.
        let t = f.store(t);
        let rejected: Vec<String> = t
            .logs
            .iter()
            .filter_map(|l| match l {
                crate::core::turn::Log::ReportRejected { reason, .. } => Some(reason.to_string()),
                _ => None,
            })
            .collect();
        assert!(
            rejected.is_empty(),
            "turn {turn_no}: reports refused: {rejected:?}"
        );
        for (_, p) in &t.publish {
            let Published::Order(o) = p else { continue };
            let (_, running) = plugs.get_mut(o.host.as_str()).unwrap();
            if running.is_some() {
                continue; // a resend of what it runs
            }
            ran.entry(o.host.clone()).or_default().push(o.seq);
            let ok = StepResult::ok("ok");
            let failed = next(4) == 0;
            let mut left = vec![
                ReportKind::Accepted,
                ReportKind::StepStarted { step: 0 },
                ReportKind::StepFinished {
                    step: 0,
                    result: ok.clone(),
                },
            ];
            let outcome = if failed {
                left.extend([
                    ReportKind::StepStarted { step: 1 },
                    ReportKind::StepFinished {
                        step: 1,
                        result: StepResult::failed("boom"),
                    },
                    ReportKind::UndoStarted { step: 0 },
                    ReportKind::UndoFinished {
                        step: 0,
                        result: ok.clone(),
                    },
                ]);
                vigie_wire::tower::Outcome::RolledBack {
                    failed_step: Some(1),
                    interrupted: false,
                    stopped: false,
                }
            } else {
                left.extend([
                    ReportKind::StepStarted { step: 1 },
                    ReportKind::StepFinished {
                        step: 1,
                        result: ok,
                    },
                ]);
                vigie_wire::tower::Outcome::Succeeded
            };
            left.push(ReportKind::Finished { outcome });
            *running = Some((o.change.clone(), left));
        }
    }
    assert!(
        submitted >= 20,
        "the workload submitted {submitted} changes"
    );
    let end = stored(&f.tower);
    for (id, (state, _)) in &end.changes {
        assert!(state.is_final(), "{id} is {}", state.word());
    }
    for (h, seqs) in &ran {
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "{h} ran out of sequence order: {seqs:?}"
        );
    }
    let records = f.store.audit().unwrap();
    let head = f.tower.audit_head().clone();
    crate::core::audit::verify_chain(records, &head).unwrap();
}

/// Calls of one turn see each other's effects on the operators: two
/// revocations in one turn cannot leave a tenant without anyone to manage
/// its operators, and a key rotated after a revocation does not revive it.
#[test]
fn operator_calls_in_one_turn_see_each_other() {
    let mut f = fixture();
    let acme = Caller::internal("acme", "t");
    let add = |name: &str, key: char| ApiCall::OperatorAdd {
        name: name.into(),
        public: key.to_string().repeat(40),
        grants: vec![vigie_wire::front::Grant::parse("operators.admin").unwrap()],
    };
    let mut t = Turn::started();
    for (name, key) in [("alice", 'a'), ("bob", 'b')] {
        crate::shell::history::api(
            &mut f.tower,
            &acme,
            add(name, key),
            &f.store.db,
            f.now,
            &mut t,
        )
        .unwrap();
    }
    f.store(t);
    let mut t = Turn::started();
    let revoke = |name: &str| ApiCall::OperatorRevoke { name: name.into() };
    let first = crate::shell::history::api(
        &mut f.tower,
        &acme,
        revoke("alice"),
        &f.store.db,
        f.now,
        &mut t,
    );
    assert!(first.is_ok(), "{first:?}");
    let second = crate::shell::history::api(
        &mut f.tower,
        &acme,
        revoke("bob"),
        &f.store.db,
        f.now,
        &mut t,
    );
    assert_eq!(
        second.unwrap_err().kind,
        vigie_wire::tower::ApiFaultKind::Conflict,
        "bob is now the last who manages acme's operators"
    );
    let rotate = ApiCall::OperatorRotateKey {
        name: "alice".into(),
        public: "c".repeat(40),
    };
    let revived =
        crate::shell::history::api(&mut f.tower, &acme, rotate, &f.store.db, f.now, &mut t);
    assert!(
        revived.is_err(),
        "a revoked operator's key is not rotated back to life"
    );
    f.store(t);
    let again = crate::shell::load::tower(&f.store.db, f.tower.timing()).unwrap();
    let alice = again
        .access()
        .operators()
        .iter()
        .find(|o| o.name == "alice")
        .unwrap();
    assert!(alice.revoked && alice.public == "a".repeat(40));
}

/// Issue 18 item 7: an operators.admin may not revoke or rotate the key of
/// an operator holding a grant it lacks — not even the one who made it;
/// each refusal is audited in the tenant and names no other tenant.
#[test]
fn a_weaker_operator_neither_revokes_nor_takes_over_a_stronger_one() {
    use vigie_wire::front::Grant;
    use vigie_wire::tower::{ApiFaultKind, Origin};
    let mut f = fixture();
    let grants = |g: &[&str]| g.iter().map(|g| Grant::parse(g).unwrap()).collect();
    let add = |name: &str, key: char, g: &[&str]| ApiCall::OperatorAdd {
        name: name.into(),
        public: key.to_string().repeat(40),
        grants: grants(g),
    };
    let as_op = |name: &str| Caller {
        origin: Origin::Operator {
            home: "acme".into(),
        },
        ..Caller::internal("acme", name)
    };
    let mut t = Turn::started();
    let tower = Caller::internal("acme", "t");
    let maker = add("maker", 'm', &["operators.admin", "changes.submit"]);
    crate::shell::history::api(&mut f.tower, &tower, maker, &f.store.db, f.now, &mut t).unwrap();
    // The maker mints a peer with operators.admin only.
    let minted = add("minted", 'p', &["operators.admin"]);
    crate::shell::history::api(
        &mut f.tower,
        &as_op("maker"),
        minted,
        &f.store.db,
        f.now,
        &mut t,
    )
    .unwrap();
    f.store(t);

    let mut t = Turn::started();
    let peer = as_op("minted");
    let revoke = ApiCall::OperatorRevoke {
        name: "maker".into(),
    };
    let err = crate::shell::history::api(&mut f.tower, &peer, revoke, &f.store.db, f.now, &mut t)
        .unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Forbidden, "{err}");
    assert!(err.message.contains("changes.submit"), "{err}");
    let rotate = ApiCall::OperatorRotateKey {
        name: "maker".into(),
        public: "x".repeat(40),
    };
    let err = crate::shell::history::api(&mut f.tower, &peer, rotate, &f.store.db, f.now, &mut t)
        .unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Forbidden, "{err}");
    // Nothing changed: the maker is still active with its own key...
    f.store(t);
    let again = crate::shell::load::tower(&f.store.db, f.tower.timing()).unwrap();
    let maker = again
        .access()
        .operators()
        .iter()
        .find(|o| o.name == "maker")
        .unwrap();
    assert!(!maker.revoked && maker.public == "m".repeat(40));
    // ...and both refusals are in acme's audit, naming who tried what.
    let refused: Vec<_> = f
        .store
        .audit()
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "operator_refused")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    for r in &refused {
        assert_eq!((r.tenant.as_str(), r.operator.as_str()), ("acme", "minted"));
        assert!(r.summary.contains("operator maker"), "{}", r.summary);
    }
    // The maker, holding every grant of its peer, may revoke it.
    let mut t = Turn::started();
    let revoke = ApiCall::OperatorRevoke {
        name: "minted".into(),
    };
    crate::shell::history::api(
        &mut f.tower,
        &as_op("maker"),
        revoke,
        &f.store.db,
        f.now,
        &mut t,
    )
    .unwrap();
}

#[test]
fn the_queue_check_sees_a_change_out_of_its_queue_or_a_miscounted_program() {
    let mut f = fixture();
    f.beat("h", 1, None);
    let ids = f.submit("h");
    assert_eq!(f.tower.check(), Ok(()));
    let spec_id = f.tower.queues().change(&ids[0]).unwrap().spec_id.clone();
    if let Some(p) = f.tower.queues_mut().program_mut(&spec_id) {
        p.users += 1;
    }
    assert!(f.tower.check().is_err(), "a program counted once too many");
    if let Some(p) = f.tower.queues_mut().program_mut(&spec_id) {
        p.users -= 1;
    }
    f.tower.queues_mut().clear_queue("h");
    assert!(f.tower.check().is_err(), "a change in no queue");
}

#[test]
fn a_referee_behind_on_its_events_does_not_take_its_lag_for_hosts_gone_silent() {
    let mut f = fixture();
    f.beat("h", 1, None);
    assert!(f.tower.hosts()["h"].online);
    // Past the host timeout with beats perhaps still unread: judged by
    // nothing it has not read.
    f.now += Duration::from_secs(10);
    let mut t = Turn::started();
    f.tower.tick_unjudged(f.now, &mut t);
    assert!(
        f.tower.hosts()["h"].online,
        "kept while the referee is behind"
    );
    let mut t = Turn::started();
    f.tower.tick(f.now, &mut t);
    assert!(
        !f.tower.hosts()["h"].online,
        "silent once the referee caught up"
    );
}
