//! A long history costs a start only its recent part: the tower loads the
//! last `RECENT` finished changes, and an older change is read when it is
//! asked for. History is written straight into the in-memory store, in
//! the format the referee stores.

use std::cell::Cell;
use std::time::Instant;

use vigie_wire::tower::{
    ApiAnswer, ApiCall, AuditFilter, AuditRecord, Caller, ChangeState, ChangeView,
};

use crate::core::audit::{self, AuditChain};
use crate::core::codec::encode;
use crate::core::model::{change_id, change_key, done_key, ChangeRecord, NEXT_SEQ_KEY};
use crate::core::state::RECENT;
use crate::core::turn::Turn;
use crate::shell::mem_store::MemStore;
use crate::shell::store::{Entries, Entry, Store, StoreError, Writes};
use crate::shell::test_store::TIMING;

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

    fn page(&self, prefix: &[u8], start: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let v = self.db.page(prefix, start, limit)?;
        self.scanned.set(self.scanned.get() + v.len());
        Ok(v)
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
    let mut tower = crate::shell::load::tower(&store, TIMING).unwrap();
    assert_eq!(tower.queues().recent().len(), RECENT);
    assert_eq!(
        tower.queues().recent().front().map(|v| v.seq),
        Some(n + 1 - RECENT as u64)
    );
    assert_eq!(tower.queues().recent().back().map(|v| v.seq), Some(n));
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
    let mut turn = Turn::started();
    let answer = crate::shell::history::api(
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

/// `n` audit records of tenant `default`, on host `web-<seq % 10>`, sealed
/// and stored with their head and tenant number.
fn audit_history(n: u64) -> Counted {
    let store = Counted::default();
    let mut chain = AuditChain::default();
    let mut writes: Writes = Vec::new();
    for seq in 1..=n {
        let rec = chain.seal(AuditRecord {
            seq: 0,
            at_ms: seq,
            tenant: "default".into(),
            operator: "op".into(),
            host: format!("web-{}", seq % 10),
            change: change_id(seq),
            step: None,
            action: "submitted".into(),
            summary: String::new(),
            exit_code: None,
            before_digest: None,
            after_digest: None,
            output_tail: String::new(),
            prev_hash: String::new(),
            hash: String::new(),
            tenant_seq: seq,
        });
        writes.push((audit::record_key(seq), Some(encode(&rec))));
        if writes.len() >= 10_000 {
            store.write(&mut writes).unwrap();
        }
    }
    writes.push((audit::HEAD_KEY.to_vec(), Some(chain.encode_head())));
    writes.push((audit::tenant_key("default"), Some(n.to_be_bytes().to_vec())));
    store.write(&mut writes).unwrap();
    store
}

/// The tenant numbers `audit` answers `filter` and `limit` with, and how
/// many records were read for it.
fn audit_numbers(
    store: &Counted,
    host: Option<&str>,
    filter: AuditFilter,
    limit: u32,
) -> (Vec<u64>, usize) {
    let mut tower = crate::shell::load::tower(store, TIMING).unwrap();
    store.scanned.set(0);
    let call = ApiCall::Audit {
        host: host.map(str::to_owned),
        change: None,
        limit,
        filter: Box::new(filter),
    };
    let caller = Caller::internal("default", "op");
    let mut turn = Turn::started();
    match crate::shell::history::api(&mut tower, &caller, call, store, Instant::now(), &mut turn) {
        Ok(ApiAnswer::Audit(v)) => (
            v.iter().map(|r| r.tenant_seq).collect(),
            store.scanned.get(),
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn audit_reads_its_page_not_the_chain_and_answers_as_the_whole_chain_would() {
    let n = 50_000;
    let store = audit_history(n);
    let (newest, read) = audit_numbers(&store, None, AuditFilter::default(), 100);
    assert_eq!(newest, (n - 99..=n).collect::<Vec<_>>());
    assert!(read <= 256, "{read} records read for a page of 100");

    // Paging back and forward, and a filter that pages further back.
    let before = AuditFilter {
        before: Some(n - 99),
        ..AuditFilter::default()
    };
    let (back, _) = audit_numbers(&store, None, before, 100);
    assert_eq!(back, (n - 199..n - 99).collect::<Vec<_>>());
    let after = AuditFilter {
        after: Some(n - 1_000),
        ..AuditFilter::default()
    };
    let (forward, read) = audit_numbers(&store, None, after, 3);
    assert_eq!(forward, vec![n - 999, n - 998, n - 997]);
    assert!(read < 2_000, "{read} records read");
    let (web3, _) = audit_numbers(&store, Some("web-3"), AuditFilter::default(), 300);
    let want: Vec<u64> = (1..=n).filter(|s| s % 10 == 3).collect();
    assert_eq!(web3, want[want.len() - 300..]);
    // No match: the whole chain is read, and nothing answered.
    let (none, read) = audit_numbers(&store, Some("web-99"), AuditFilter::default(), 10);
    assert!(none.is_empty());
    assert_eq!(read, n as usize);
}
