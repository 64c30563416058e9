//! SIGKILL in the middle of a stream of batches: after a restart every
//! batch is there whole or not at all, and every acknowledged one is there.

use std::sync::mpsc;
use std::time::Duration;

use rand::Rng;
use vigie_escalator::{Client, RangeSpec};
use vigie_tests::Escalator;

const KEYS: usize = 10;

#[test]
fn batches_are_all_or_nothing_across_sigkill() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut esc = Escalator::start(dir.path(), &[])?;
    esc.client()?.create("b")?;
    let mut rng = rand::thread_rng();
    let mut last_acked = 0u64;
    for round in 0..3 {
        let kill_after = rng.gen_range(20..300u64);
        let (tx, rx) = mpsc::channel();
        let ep = esc.endpoint.clone();
        let start = last_acked + 1;
        // The writer streams batches until the server dies under it; each
        // batch i rewrites the same KEYS keys to i and adds KEYS keys of its own.
        let writer = std::thread::spawn(move || {
            let Ok(client) = Client::connect(&ep) else {
                return;
            };
            client.set_timeouts(Duration::from_millis(200), Duration::from_millis(1_500));
            let Ok(db) = client.connect_db("b") else {
                return;
            };
            for i in start.. {
                let mut batch = db.clone().durable(i % 2 == 0).batch();
                for k in 0..KEYS {
                    batch.put(format!("slot/{k}").as_bytes(), &i.to_be_bytes());
                    batch.put(format!("own/{i:08}/{k}").as_bytes(), b"x");
                }
                if batch.write().is_err() || tx.send(i).is_err() {
                    return;
                }
            }
        });
        // Wait for a random number of acknowledgements, then kill -9.
        let mut acked = 0;
        for _ in 0..kill_after {
            acked = rx.recv_timeout(Duration::from_secs(20))?;
        }
        esc.daemon.kill9()?;
        writer.join().expect("writer");
        while let Ok(i) = rx.try_recv() {
            acked = i;
        }
        esc.restart()?;
        let db = esc.client()?.connect_db("b")?;
        let slots: Vec<u64> = (0..KEYS)
            .map(|k| {
                let v = db.get(format!("slot/{k}").as_bytes())?.expect("slot");
                Ok(u64::from_be_bytes(v.try_into().expect("8 bytes")))
            })
            .collect::<anyhow::Result<_>>()?;
        assert!(
            slots.iter().all(|s| *s == slots[0]),
            "round {round}: torn batch {slots:?}"
        );
        assert!(
            slots[0] >= acked,
            "round {round}: acknowledged batch {acked} lost (found {})",
            slots[0]
        );
        let own = db.range(RangeSpec {
            prefix: Some(b"own/".to_vec()),
            keys_only: true,
            ..Default::default()
        })?;
        let mut per_batch = std::collections::BTreeMap::<String, usize>::new();
        for e in own {
            let key = String::from_utf8(e.key)?;
            *per_batch.entry(key[4..12].to_owned()).or_default() += 1;
        }
        assert!(
            per_batch.values().all(|n| *n == KEYS),
            "round {round}: partial batch"
        );
        assert_eq!(
            per_batch.len() as u64,
            slots[0],
            "round {round}: batches 1..=last all present"
        );
        last_acked = slots[0];
    }
    Ok(())
}
