//! A durable write is fdatasync'ed before its reply leaves, and concurrent
//! durable writes share syncs (group commit). The server runs in-process
//! with a probe that records, in order, what it applied, synced and replied.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use vigie_escalator::{Client, ProbeEvent, ServerConfig};

#[test]
fn durable_replies_follow_their_fdatasync_and_writers_share_syncs() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let endpoint = format!("ipc://{}/e.sock", dir.path().display());
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    let probe = Box::new(move |ev: ProbeEvent| sink.lock().expect("probe log").push(ev));
    let stop = Arc::new(AtomicBool::new(false));
    let cfg = ServerConfig::new(dir.path().join("data"), vec![endpoint.clone()]);
    let flag = stop.clone();
    let server = std::thread::spawn(move || vigie_escalator::serve(cfg, flag, Some(probe)));
    Client::connect(&endpoint)?.create("d")?;

    const WRITERS: usize = 64;
    const EACH: usize = 20;
    let mut threads: Vec<_> = (0..WRITERS)
        .map(|w| {
            let ep = endpoint.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                let db = Client::connect(&ep)?.connect_db("d")?;
                for i in 0..EACH {
                    db.put(format!("{w}/{i}").as_bytes(), b"durable")?;
                }
                Ok(())
            })
        })
        .collect();
    let ep = endpoint.clone();
    threads.push(std::thread::spawn(move || -> anyhow::Result<()> {
        let db = Client::connect(&ep)?.connect_db("d")?.durable(false);
        for i in 0..EACH {
            db.put(format!("volatile/{i}").as_bytes(), b"v")?;
        }
        Ok(())
    }));
    for t in threads {
        t.join().expect("writer")?;
    }
    stop.store(true, Ordering::Relaxed);
    server.join().expect("server thread")?;

    let events = log.lock().expect("probe log").clone();
    let mut durable = 0;
    for (i, ev) in events.iter().enumerate() {
        let ProbeEvent::Applied { seq, durable: true } = ev else {
            continue;
        };
        durable += 1;
        let replied = events[i..]
            .iter()
            .position(|e| *e == ProbeEvent::Replied { seq: *seq })
            .map(|p| p + i)
            .unwrap_or_else(|| panic!("durable request {seq} never replied"));
        let synced = events[i..replied]
            .iter()
            .any(|e| matches!(e, ProbeEvent::Synced { calls, .. } if *calls > 0));
        assert!(
            synced,
            "request {seq} was replied to before any fdatasync after it was applied"
        );
    }
    assert_eq!(durable, WRITERS * EACH);
    let syncs = events
        .iter()
        .filter(|e| matches!(e, ProbeEvent::Synced { .. }))
        .count();
    assert!(syncs > 0);
    assert!(
        syncs < durable,
        "group commit: {durable} durable writes should share fewer than {durable} syncs, got {syncs}"
    );
    Ok(())
}
