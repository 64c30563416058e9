//! Enrolment against a real (in-process) Escalator: the referee keeps the
//! key registry in memory, so a registration sees every earlier one — in
//! the same turn too — and costs the same however many keys exist.

use std::time::{Duration, Instant};

use vigie_escalator::bench::LocalServer;
use vigie_wire::tower::{ApiCall, ApiFaultKind, Caller};

use crate::tower::{Timing, Tower};
use crate::turn::Turn;

const TIMING: Timing = Timing {
    host_timeout: Duration::from_secs(3),
    resend_after: Duration::from_secs(1),
};

fn key(i: usize) -> String {
    // 40 characters of the Z85 alphabet, distinct per i.
    format!("{i:0>40}")
}

#[test]
fn one_key_cannot_be_enrolled_for_two_hosts_even_in_one_turn() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path(), true).unwrap();
    let db = vigie_escalator::Client::connect(&server.endpoint)
        .unwrap()
        .create(crate::model::DB)
        .unwrap();
    let mut tower = Tower::load(&db, TIMING).unwrap();
    let caller = Caller::internal("default", "t");
    let mut turn = Turn::default();
    let mut add = |host: &str, turn: &mut Turn| {
        tower.api(
            &caller,
            ApiCall::KeyAdd {
                host: host.into(),
                public: key(1),
            },
            &db,
            Instant::now(),
            turn,
        )
    };
    assert!(add("h-1", &mut turn).is_ok());
    let second = add("h-2", &mut turn).unwrap_err();
    assert_eq!(second.kind, ApiFaultKind::Conflict, "{second:?}");
}

#[test]
fn enrolling_stays_flat_as_the_registry_grows() {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path(), true).unwrap();
    let db = vigie_escalator::Client::connect(&server.endpoint)
        .unwrap()
        .create(crate::model::DB)
        .unwrap();
    let mut tower = Tower::load(&db, TIMING).unwrap();
    let caller = Caller::internal("default", "t");
    // Each registration in its own stored turn, as over the API.
    let mut enrol = |from: usize, to: usize| {
        let t = Instant::now();
        for i in from..to {
            let mut turn = Turn::default();
            tower
                .api(
                    &caller,
                    ApiCall::KeyAdd {
                        host: format!("h-{i}"),
                        public: key(i),
                    },
                    &db,
                    Instant::now(),
                    &mut turn,
                )
                .unwrap();
            tower.finish_turn(&mut turn);
            let mut b = db.batch();
            for (k, v) in turn.writes.drain(..) {
                if let Some(v) = v {
                    b.put(&k, &v);
                }
            }
            b.write().unwrap();
        }
        t.elapsed()
    };
    let first = enrol(0, 100);
    enrol(100, 1_500);
    let last = enrol(1_500, 1_600);
    // A scan of every key per registration made the last 100 many times
    // slower than the first 100; allow noise, not growth.
    assert!(
        last < first * 3,
        "first 100: {first:?}, last 100 (with 1,500 registered): {last:?}"
    );
}
