//! The etcd engine against a real etcd started by the test (own data dir,
//! loopback ports): the same conformance and crash-point suites as LevelDB,
//! a batch over etcd's limits refused whole, and the fencing invariant — a
//! deposed tower's late write is refused by etcd itself.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use vigie_escalator::engine::faults::FaultMode;
use vigie_escalator::engine::{Election, Engine, EngineError, EtcdEngine, Leader};
use vigie_escalator_tests::conformance;
use vigie_escalator_tests::crashpoint;
use vigie_escalator_tests::etcd_server::EtcdServer;
use vigie_escalator_tests::etcd_subject::EtcdSubject;
use vigie_wire::escalator::BatchOp;

fn server() -> anyhow::Result<(tempfile::TempDir, EtcdServer)> {
    let dir = tempfile::tempdir()?;
    let s = EtcdServer::start(&dir.path().join("etcd")).map_err(anyhow::Error::msg)?;
    Ok((dir, s))
}

fn put(k: &[u8], v: &[u8]) -> BatchOp {
    BatchOp::Put {
        key: k.to_vec(),
        value: v.to_vec(),
    }
}

#[test]
fn etcd_engine_conforms() -> anyhow::Result<()> {
    let (_dir, etcd) = server()?;
    let mut n = 0;
    conformance::run_all(&mut || {
        // Each check on a fresh, empty database: a prefix of its own.
        n += 1;
        let opts = etcd.options(format!("conformance/{n}/").as_bytes());
        Box::new(EtcdEngine::open(&opts).expect("open"))
    });
    Ok(())
}

#[test]
fn etcd_keeps_every_acknowledged_write_at_every_crash_point() -> anyhow::Result<()> {
    let (_dir, etcd) = server()?;
    let etcd = Rc::new(RefCell::new(etcd));
    let turns = crashpoint::workload(7, 30);
    let t = Instant::now();
    let mut make = |name: &str| Ok(EtcdSubject::new(etcd.clone(), name));
    let s = crashpoint::sweep(&mut make, &turns, &FaultMode::ALL, 1).map_err(anyhow::Error::msg)?;
    eprintln!(
        "{} requests, {} runs, {} etcd starts in {:.1?}: {} acknowledged writes checked, {} unacknowledged found whole",
        s.ops, s.runs, etcd.borrow().starts, t.elapsed(), s.acknowledged, s.unacked_present
    );
    let shown: Vec<_> = s.failures.iter().take(10).collect();
    assert!(
        s.failures.is_empty(),
        "{} of {} crash-point runs broke the model, e.g. {shown:#?}",
        s.failures.len(),
        s.runs
    );
    assert!(s.ops >= 30, "only {} requests", s.ops);
    // A lost answer leaves the write applied: the sweep saw some.
    assert!(s.unacked_present > 0, "no unacknowledged write was found");
    Ok(())
}

#[test]
fn a_batch_over_etcds_limits_is_refused_whole() -> anyhow::Result<()> {
    let (_dir, etcd) = server()?;
    let mut e = EtcdEngine::open(&etcd.options(b"big/"))?;
    let ops: Vec<_> = (0..200u32).map(|i| put(&i.to_be_bytes(), b"v")).collect();
    let err = e.write(&ops).expect_err("200 ops in one transaction");
    assert!(matches!(err, EngineError::TooLarge(_)), "{err}");
    assert!(err.to_string().contains("refused whole"), "{err}");
    let huge = [put(b"a", b"1"), put(b"b", &vec![7; 2 << 20])];
    assert!(matches!(e.write(&huge), Err(EngineError::TooLarge(_))));
    assert_eq!(e.get(&0u32.to_be_bytes())?, None, "nothing of it landed");
    assert_eq!(e.get(b"a")?, None, "nothing of it landed");
    e.write(&ops[..100])?;
    assert_eq!(e.get(&99u32.to_be_bytes())?, Some(b"v".to_vec()));
    Ok(())
}

#[test]
fn a_deposed_towers_late_write_is_refused_by_etcd() -> anyhow::Result<()> {
    let (_dir, etcd) = server()?;
    let eps = vec![etcd.endpoint()];
    let key = b"ha/group/leader";
    let ttl = Duration::from_secs(5);
    let timeout = Duration::from_secs(10);
    let mut a = Election::new(&eps, key, "tower-a", timeout)?;
    let mut b = Election::new(&eps, key, "tower-b", timeout)?;
    let la = a.grant(ttl)?;
    let lb = b.grant(ttl)?;
    assert_eq!(a.campaign(la)?, Leader::Me);
    assert_eq!(
        b.campaign(lb)?,
        Leader::Other {
            name: "tower-a".into(),
            lease: la
        },
        "one active at a time"
    );
    let mut db_a = EtcdEngine::open(&etcd.options(b"db/state/"))?;
    db_a.set_fence(Some(a.fence(la)));
    db_a.write(&[put(b"change/1", b"queued by a")])?;
    // The standby's fenced writes are refused while A holds the key.
    let mut db_b = EtcdEngine::open(&etcd.options(b"db/state/"))?;
    db_b.set_fence(Some(b.fence(lb)));
    let err = db_b
        .write(&[put(b"change/2", b"b too early")])
        .expect_err("b is standby");
    assert!(matches!(err, EngineError::Fenced { .. }), "{err}");
    // A's lease ends (as when its machine dies: etcd drops the lease and
    // the key with it); B takes over.
    assert!(a.keep_alive(la)?, "a's lease is alive until it ends");
    a.resign(la)?;
    assert!(!a.keep_alive(la)?, "a learns it is deposed");
    assert_eq!(b.campaign(lb)?, Leader::Me);
    db_b.write(&[put(b"change/2", b"queued by b")])?;
    // A's late write: refused by etcd, and nothing of it lands.
    let err = db_a
        .write(&[put(b"change/1", b"late a"), put(b"change/3", b"late a")])
        .expect_err("a was deposed");
    assert!(matches!(err, EngineError::Fenced { .. }), "{err}");
    assert!(err.to_string().contains("deposed"), "{err}");
    assert_eq!(db_b.get(b"change/1")?, Some(b"queued by a".to_vec()));
    assert_eq!(db_b.get(b"change/2")?, Some(b"queued by b".to_vec()));
    assert_eq!(db_b.get(b"change/3")?, None);
    // Even a new lease of A's cannot write under B's fence.
    let la2 = a.grant(ttl)?;
    db_a.set_fence(Some(a.fence(la2)));
    assert!(matches!(
        db_a.write(&[put(b"change/4", b"a again")]),
        Err(EngineError::Fenced { .. })
    ));
    Ok(())
}
