//! A long history costs a start only its recent part: the tower loads the
//! last `RECENT` finished changes, and an older change is read when it is
//! asked for. History is written straight into the in-memory store, in
//! the format the referee stores.

use std::cell::Cell;
use std::time::Instant;

use vigie_wire::tower::{ApiAnswer, ApiCall, Caller, ChangeState, ChangeView};

use crate::codec::encode;
use crate::mem_store::MemStore;
use crate::model::{change_id, change_key, done_key, ChangeRecord, NEXT_SEQ_KEY};
use crate::store::{Entries, Store, StoreError, Writes};
use crate::test_store::TIMING;
use crate::tower::{Tower, RECENT};
use crate::turn::Turn;

/// A store that counts what is read of it.
#[derive(Default)]
struct Counted {
    db: MemStore,
    gets: Cell<usize>,
    scanned: Cell<usize>,
}

impl Store for Counted {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.gets.set(self.gets.get() + 1);
        self.db.get(key)
    }

    fn scan<'a>(&'a self, prefix: &[u8], start: Option<&[u8]>) -> Entries<'a> {
        Box::new(self.db.scan(prefix, start).inspect(|_| {
            self.scanned.set(self.scanned.get() + 1);
        }))
    }

    fn write(&self, writes: &mut Writes) -> Result<(), StoreError> {
        self.db.write(writes)
    }
}

fn finished(seq: u64) -> ChangeRecord {
    ChangeRecord {
        view: ChangeView {
            id: change_id(seq),
            host: "web-1".into(),
            seq,
            tenant: "default".into(),
            operator: "op".into(),
            title: format!("change {seq}"),
            state: ChangeState::Succeeded,
            steps: Vec::new(),
            submitted_ms: seq,
            updated_ms: seq,
            waiting: None,
        },
        accepted: true,
        spec_id: change_id(seq),
    }
}

/// `n` finished changes, numbered from 1, as the referee stores them.
fn history(n: u64) -> Counted {
    let store = Counted::default();
    let mut writes: Writes = Vec::new();
    for seq in 1..=n {
        let rec = finished(seq);
        writes.push((done_key(seq), Some(rec.view.id.clone().into_bytes())));
        writes.push((change_key(&rec.view.id), Some(encode(&rec))));
        if writes.len() >= 10_000 {
            store.write(&mut writes).unwrap();
        }
    }
    writes.push((NEXT_SEQ_KEY.to_vec(), Some((n + 1).to_be_bytes().to_vec())));
    store.write(&mut writes).unwrap();
    store
}

#[test]
fn a_start_loads_only_the_recent_finished_changes_and_an_old_one_still_answers() {
    let n = 20 * RECENT as u64;
    let store = history(n);
    let mut tower = Tower::load(&store, TIMING).unwrap();
    assert_eq!(tower.recent.len(), RECENT);
    assert_eq!(
        tower.recent.front().map(|v| v.seq),
        Some(n + 1 - RECENT as u64)
    );
    assert_eq!(tower.recent.back().map(|v| v.seq), Some(n));
    // What a start reads does not grow with the history behind it.
    let bound = 2 * RECENT + 100;
    assert!(store.gets.get() <= bound, "{} gets", store.gets.get());
    assert!(
        store.scanned.get() <= bound,
        "{} scanned",
        store.scanned.get()
    );

    // The first change is long out of memory: its status is read for it.
    let caller = Caller::internal("default", "op");
    let status = ApiCall::Status {
        change: Some(change_id(1)),
        limit: 0,
    };
    let mut turn = Turn::default();
    let answer = crate::fetch::api(
        &mut tower,
        &caller,
        status,
        &store,
        Instant::now(),
        &mut turn,
    );
    match answer.unwrap() {
        ApiAnswer::Changes(v) => {
            assert_eq!(v.len(), 1);
            assert_eq!((v[0].seq, v[0].state), (1, ChangeState::Succeeded));
        }
        other => panic!("{other:?}"),
    }
}
