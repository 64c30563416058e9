//! Escalator servers keeping their databases in a real etcd, as the towers
//! of an HA group do: the standby serves what the active acknowledged; its
//! writes are refused until it holds the election key; once it does, the
//! deposed active's late writes are refused (a `Storage` fault naming it),
//! with nothing of them landing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use vigie_escalator::engine::{Election, Leader, TxnLimits};
use vigie_escalator::{Client, EscalatorError, EtcdStore, FaultKind, ServerConfig};
use vigie_escalator_tests::etcd_server::EtcdServer;

struct Tower {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), EscalatorError>>>,
    client: Client,
}

impl Tower {
    fn start(dir: &std::path::Path, etcd: EtcdStore) -> anyhow::Result<Self> {
        let ep = format!("ipc://{}/escalator.sock", dir.display());
        let mut cfg = ServerConfig::new(dir.join("data"), vec![ep.clone()]);
        cfg.etcd = Some(etcd);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || vigie_escalator::serve(cfg, flag, None));
        Ok(Self {
            stop,
            thread: Some(thread),
            client: Client::connect(&ep)?,
        })
    }
}

impl Drop for Tower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn storage_fault(r: Result<(), EscalatorError>) -> String {
    match r {
        Err(EscalatorError::Fault(f)) if f.kind == FaultKind::Storage => f.message,
        other => panic!("expected a Storage fault, got {other:?}"),
    }
}

#[test]
fn a_standby_serves_what_the_active_acknowledged_and_a_deposed_one_cannot_write(
) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let etcd = EtcdServer::start(&tmp.path().join("etcd")).map_err(anyhow::Error::msg)?;
    let eps = vec![etcd.endpoint()];
    let key = b"vigie/group/leader";
    let timeout = Duration::from_secs(10);
    let mut ea = Election::new(&eps, key, "a", timeout)?;
    let mut eb = Election::new(&eps, key, "b", timeout)?;
    let (la, lb) = (ea.grant(timeout)?, eb.grant(timeout)?);
    assert_eq!(ea.campaign(la)?, Leader::Me);
    let store = |fence| EtcdStore {
        endpoints: eps.clone(),
        prefix: b"vigie/group/".to_vec(),
        limits: TxnLimits::default(),
        fence: Some(fence),
        timeout,
    };
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&da)?;
    std::fs::create_dir_all(&db)?;
    let a = Tower::start(&da, store(ea.fence(la)))?;
    let state = a.client.create("state")?;
    let mut batch = state.batch();
    batch.put(b"change/1", b"queued").put(b"audit/1", b"submit");
    batch.write()?;
    for i in 0..50u32 {
        state.put(format!("host/{i:03}").as_bytes(), b"online")?;
    }

    // The standby reads every acknowledged write, and may not write yet.
    let b = Tower::start(&db, store(eb.fence(lb)))?;
    let standby = b.client.connect_db("state")?;
    assert_eq!(standby.get(b"change/1")?, Some(b"queued".to_vec()));
    assert_eq!(standby.range(Default::default())?.len(), 52);
    let why = storage_fault(standby.put(b"change/2", b"too early"));
    assert!(why.contains("deposed"), "{why}");

    // The active's lease ends; the standby takes the key and writes.
    ea.resign(la)?;
    assert_eq!(eb.campaign(lb)?, Leader::Me);
    standby.put(b"change/2", b"queued by b")?;

    // The deposed active's late writes: refused, nothing of them lands.
    let why = storage_fault(state.put(b"change/1", b"late"));
    assert!(why.contains("deposed"), "{why}");
    let mut late = state.batch();
    late.put(b"change/3", b"late").delete(b"change/2");
    assert!(matches!(late.write(), Err(EscalatorError::Fault(_))));
    assert_eq!(standby.get(b"change/1")?, Some(b"queued".to_vec()));
    assert_eq!(standby.get(b"change/2")?, Some(b"queued by b".to_vec()));
    assert_eq!(standby.get(b"change/3")?, None);
    Ok(())
}
