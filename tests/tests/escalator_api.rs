//! Every client call against a real `vigie escalator` process.

use std::collections::BTreeMap;

use vigie_escalator::{EscalatorError, FaultKind, RangeSpec};
use vigie_tests::Escalator;

fn fault_kind(e: EscalatorError) -> FaultKind {
    match e {
        EscalatorError::Fault(f) => f.kind,
        other => panic!("expected a fault reply, got {other}"),
    }
}

fn keys(entries: &[vigie_escalator::Entry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| String::from_utf8_lossy(&e.key).into_owned())
        .collect()
}

#[test]
fn every_call_works_over_the_socket() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let esc = Escalator::start(dir.path(), &[])?;
    let client = esc.client()?;
    client.ping()?;

    assert_eq!(
        fault_kind(client.connect_db("state").err().expect("missing db")),
        FaultKind::UnknownDatabase
    );
    let db = client.create("state")?;
    client.create("state")?; // exist_ok
    let again = client.connect_db("state")?;

    assert_eq!(db.get(b"k")?, None);
    assert!(!db.exists(b"k")?);
    db.put(b"k", b"v1")?;
    assert_eq!(
        again.get(b"k")?,
        Some(b"v1".to_vec()),
        "visible through another handle"
    );
    assert!(db.exists(b"k")?);
    db.clone().durable(false).put(b"k", b"v2")?;
    assert_eq!(db.get(b"k")?, Some(b"v2".to_vec()));
    db.delete(b"k")?;
    assert_eq!(db.get(b"k")?, None);
    db.delete(b"never-was")?;

    let mut batch = db.batch();
    batch
        .put(b"a", b"1")
        .put(b"b", b"2")
        .put(b"c", b"3")
        .delete(b"b");
    batch.write()?;
    assert_eq!(keys(&db.range(RangeSpec::default())?), ["a", "c"]);

    let other = client.create("other")?;
    other.put(b"a", b"elsewhere")?;
    assert_eq!(db.get(b"a")?, Some(b"1".to_vec()), "databases are separate");

    let stats = client.stats()?;
    assert_eq!(stats.databases, 2);
    assert!(stats.durable_writes >= 4 && stats.syncs >= 1, "{stats:?}");
    again.close();
    assert_eq!(
        db.get(b"c")?,
        Some(b"3".to_vec()),
        "closing one handle leaves others"
    );
    Ok(())
}

#[test]
fn prefix_sub_databases_are_isolated() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let esc = Escalator::start(dir.path(), &[])?;
    let root = esc.client()?.create("hosts")?;
    // "web-1" must not see "web-10"'s keys (Onitu's bare-prefix mistake).
    let w1 = root.prefixed(b"web-1/");
    let w10 = root.prefixed(b"web-10/");
    w1.put(b"state", b"one")?;
    w10.put(b"state", b"ten")?;
    w10.put(b"extra", b"x")?;
    assert_eq!(w1.get(b"state")?, Some(b"one".to_vec()));
    assert_eq!(keys(&w1.range(RangeSpec::default())?), ["state"]);
    assert_eq!(keys(&w10.range(RangeSpec::default())?), ["extra", "state"]);
    w1.delete(b"state")?;
    assert_eq!(w10.get(b"state")?, Some(b"ten".to_vec()));
    assert_eq!(
        root.get(b"web-10/state")?,
        Some(b"ten".to_vec()),
        "root sees full keys"
    );
    // A sub-database of a sub-database stacks prefixes.
    let nested = root.prefixed(b"web-10/").prefixed(b"ex");
    assert_eq!(keys(&nested.range(RangeSpec::default())?), ["tra"]);
    // Batches through a sub-database stay inside it.
    let mut b = w1.batch();
    b.put(b"x", b"1").put(b"y", b"2");
    b.write()?;
    assert_eq!(root.get(b"web-1/x")?, Some(b"1".to_vec()));
    Ok(())
}

/// Ranges over the network against a model, with pages of 7 entries so that
/// every case also crosses page boundaries.
#[test]
fn range_edges_match_a_model() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let esc = Escalator::start(dir.path(), &["--page-entries", "7"])?;
    let db = esc.client()?.create("r")?;
    assert!(db.range(RangeSpec::default())?.is_empty(), "empty database");
    assert!(
        db.range(RangeSpec {
            reverse: true,
            ..Default::default()
        })?
        .is_empty(),
        "empty database, reverse"
    );
    let mut model = BTreeMap::new();
    let mut batch = db.batch();
    for i in 0..60u32 {
        let k = format!("k{i:02}").into_bytes();
        batch.put(&k, &i.to_be_bytes());
        model.insert(k, i.to_be_bytes().to_vec());
    }
    for k in [&b"\xff"[..], b"\xff\xff", b"k"] {
        batch.put(k, b"edge");
        model.insert(k.to_vec(), b"edge".to_vec());
    }
    batch.write()?;

    let b = |s: &str| Some(s.as_bytes().to_vec());
    let cases = [
        RangeSpec::default(),
        RangeSpec {
            start: b("k10"),
            stop: b("k20"),
            ..Default::default()
        },
        RangeSpec {
            start: b("k10"),
            stop: b("k20"),
            reverse: true,
            ..Default::default()
        },
        RangeSpec {
            prefix: b("k1"),
            ..Default::default()
        },
        RangeSpec {
            prefix: b("k1"),
            reverse: true,
            limit: Some(3),
            ..Default::default()
        },
        RangeSpec {
            limit: Some(15),
            ..Default::default()
        },
        RangeSpec {
            limit: Some(15),
            reverse: true,
            ..Default::default()
        },
        RangeSpec {
            limit: Some(0),
            ..Default::default()
        },
        RangeSpec {
            start: b("k50"),
            stop: b("k50"),
            ..Default::default()
        },
        RangeSpec {
            start: b("k59"),
            stop: b("k10"),
            ..Default::default()
        },
        RangeSpec {
            prefix: Some(vec![0xff]),
            ..Default::default()
        },
        RangeSpec {
            prefix: Some(vec![0xff]),
            reverse: true,
            ..Default::default()
        },
        RangeSpec {
            start: b("k55"),
            reverse: true,
            keys_only: true,
            ..Default::default()
        },
        RangeSpec {
            prefix: b("zz"),
            ..Default::default()
        },
    ];
    for spec in cases {
        let mut want: Vec<(Vec<u8>, Vec<u8>)> = model
            .iter()
            .filter(|(k, _)| {
                spec.start.as_ref().is_none_or(|s| *k >= s)
                    && spec.stop.as_ref().is_none_or(|s| *k < s)
                    && spec.prefix.as_ref().is_none_or(|p| k.starts_with(p))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if spec.reverse {
            want.reverse();
        }
        if let Some(l) = spec.limit {
            want.truncate(l as usize);
        }
        let got: Vec<(Vec<u8>, Option<Vec<u8>>)> = db
            .range(spec.clone())?
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect();
        let want: Vec<(Vec<u8>, Option<Vec<u8>>)> = want
            .into_iter()
            .map(|(k, v)| (k, (!spec.keys_only).then_some(v)))
            .collect();
        assert_eq!(got, want, "range {spec:?}");
    }
    Ok(())
}

/// 64 clients at once, each with 16 requests in flight.
#[test]
fn sixty_four_pipelined_clients() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let esc = Escalator::start(dir.path(), &[])?;
    esc.client()?.create("c")?;
    let handles: Vec<_> = (0..64)
        .map(|c| {
            let ep = esc.endpoint.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                let db = vigie_escalator::Client::connect(&ep)?.connect_db("c")?;
                let client = db.client().clone();
                let puts = (0..16)
                    .map(|i| {
                        db.put_async(format!("{c}/{i}").as_bytes(), format!("{c}:{i}").as_bytes())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                for t in puts {
                    client.wait(t)?;
                }
                let gets = (0..16)
                    .map(|i| db.get_async(format!("{c}/{i}").as_bytes()))
                    .collect::<Result<Vec<_>, _>>()?;
                // Redeem in reverse order: replies are matched by id, not order.
                for (i, t) in gets.into_iter().enumerate().rev() {
                    match client.wait(t)? {
                        vigie_wire::escalator::Response::Value(v) => {
                            assert_eq!(v, Some(format!("{c}:{i}").into_bytes()))
                        }
                        other => anyhow::bail!("unexpected {other:?}"),
                    }
                }
                Ok(())
            })
        })
        .collect();
    for h in handles {
        h.join().expect("client thread")?;
    }
    let all = esc.client()?.connect_db("c")?.range(RangeSpec::default())?;
    assert_eq!(all.len(), 64 * 16);
    Ok(())
}

/// Puts are staged and reach LevelDB as one batch per server turn: a read
/// pipelined right behind a write, in the same turn, still sees it, and
/// each reply answers its own request.
#[test]
fn a_read_pipelined_behind_a_write_sees_it() -> anyhow::Result<()> {
    use vigie_wire::escalator::Response;
    let dir = tempfile::tempdir()?;
    let esc = Escalator::start(dir.path(), &[])?;
    let db = esc.client()?.create("c")?.durable(false);
    let client = db.client().clone();
    let mut tickets = Vec::new();
    for round in 0..200u32 {
        let v = round.to_string().into_bytes();
        tickets.push((db.put_async(b"k", &v)?, Response::Done));
        tickets.push((db.get_async(b"k")?, Response::Value(Some(v))));
    }
    tickets.push((db.get_async(b"never")?, Response::Value(None)));
    for (t, want) in tickets {
        assert_eq!(client.wait(t)?, want);
    }
    Ok(())
}
