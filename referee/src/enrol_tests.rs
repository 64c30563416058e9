//! Enrolment on the in-memory store (`shell/mem_store.rs`): the referee keeps the
//! key registry in memory, so a registration sees every earlier one — in
//! the same turn too. (That it costs the same however many keys exist is
//! measured by `vigie bench catalog`, not timed here.)

use std::time::Instant;

use vigie_wire::tower::{ApiCall, ApiFaultKind, Caller};

use crate::core::turn::Turn;

fn key(i: usize) -> String {
    // 40 characters of the Z85 alphabet, distinct per i.
    format!("{i:0>40}")
}

#[test]
fn one_key_cannot_be_enrolled_for_two_hosts_even_in_one_turn() {
    let s = crate::shell::test_store::store();
    let mut tower = s.tower();
    let db = &s.db;
    let caller = Caller::internal("default", "t");
    let mut turn = Turn::started();
    let mut add = |host: &str, turn: &mut Turn| {
        crate::shell::history::api(
            &mut tower,
            &caller,
            ApiCall::KeyAdd {
                host: host.into(),
                public: key(1),
            },
            db,
            Instant::now(),
            turn,
        )
    };
    assert!(add("h-1", &mut turn).is_ok());
    let second = add("h-2", &mut turn).unwrap_err();
    assert_eq!(second.kind, ApiFaultKind::Conflict, "{second:?}");
}
