//! The conformance suite every [`Engine`] passes. Each check takes a fresh,
//! empty engine and panics with a description of the first divergence.
//! The randomized check compares the engine to a `BTreeMap` model.

#![allow(clippy::unwrap_used)] // a test suite: a failure is a panic with its context

use std::collections::BTreeMap;

use vigie_escalator::engine::{successor, Bounds, Engine, ScanLimit};
use vigie_wire::escalator::BatchOp;

const ALL: ScanLimit = ScanLimit {
    entries: usize::MAX,
    bytes: usize::MAX,
};

fn put(k: &[u8], v: &[u8]) -> BatchOp {
    BatchOp::Put {
        key: k.to_vec(),
        value: v.to_vec(),
    }
}

fn del(k: &[u8]) -> BatchOp {
    BatchOp::Delete { key: k.to_vec() }
}

fn keys(e: &mut dyn Engine, b: &Bounds, reverse: bool) -> Vec<Vec<u8>> {
    e.scan(b, reverse, ALL, true)
        .expect("scan")
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

fn between(lower: &[u8], upper: Option<&[u8]>) -> Bounds {
    Bounds {
        lower: lower.to_vec(),
        upper: upper.map(<[u8]>::to_vec),
    }
}

/// Runs every check on engines made by `fresh`.
pub fn run_all(fresh: &mut dyn FnMut() -> Box<dyn Engine>) {
    point_operations(fresh().as_mut());
    batches_are_atomic_and_ordered(fresh().as_mut());
    scan_edges(fresh().as_mut());
    scan_limits(fresh().as_mut());
    reverse_pages(fresh().as_mut());
    matches_model(fresh().as_mut(), 0x5eed, 3_000);
}

pub fn point_operations(e: &mut dyn Engine) {
    assert_eq!(e.get(b"a").unwrap(), None);
    e.write(&[put(b"a", b"1")]).unwrap();
    assert_eq!(e.get(b"a").unwrap(), Some(b"1".to_vec()));
    e.write(&[put(b"a", b"2")]).unwrap();
    assert_eq!(e.get(b"a").unwrap(), Some(b"2".to_vec()), "overwrite");
    e.write(&[del(b"a")]).unwrap();
    assert_eq!(e.get(b"a").unwrap(), None, "delete");
    e.write(&[del(b"never")]).unwrap();
    e.write(&[put(b"", b"empty key")]).unwrap();
    assert_eq!(e.get(b"").unwrap(), Some(b"empty key".to_vec()));
    e.write(&[put(b"bin\x00\xff", b"")]).unwrap();
    assert_eq!(
        e.get(b"bin\x00\xff").unwrap(),
        Some(Vec::new()),
        "empty value"
    );
    assert!(
        e.sync().unwrap() > 0,
        "sync after writes must reach the disk"
    );
}

pub fn batches_are_atomic_and_ordered(e: &mut dyn Engine) {
    e.write(&[put(b"x", b"1"), put(b"y", b"2"), del(b"x"), put(b"z", b"3")])
        .unwrap();
    assert_eq!(e.get(b"x").unwrap(), None, "later op in a batch wins");
    assert_eq!(e.get(b"y").unwrap(), Some(b"2".to_vec()));
    assert_eq!(e.get(b"z").unwrap(), Some(b"3".to_vec()));
    e.write(&[]).unwrap();
}

pub fn scan_edges(e: &mut dyn Engine) {
    assert!(keys(e, &Bounds::all(), false).is_empty(), "empty engine");
    assert!(
        keys(e, &Bounds::all(), true).is_empty(),
        "empty engine reverse"
    );
    let ks: [&[u8]; 6] = [b"a", b"ab", b"abc", b"b", b"\xff", b"\xff\xff"];
    e.write(&ks.iter().map(|k| put(k, k)).collect::<Vec<_>>())
        .unwrap();
    let all: Vec<Vec<u8>> = ks.iter().map(|k| k.to_vec()).collect();
    assert_eq!(keys(e, &Bounds::all(), false), all);
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(
        keys(e, &Bounds::all(), true),
        rev,
        "reverse to the very end"
    );
    let prefix_ab = between(b"ab", successor(b"ab").as_deref());
    assert_eq!(
        keys(e, &prefix_ab, false),
        vec![b"ab".to_vec(), b"abc".to_vec()]
    );
    assert_eq!(
        keys(e, &prefix_ab, true),
        vec![b"abc".to_vec(), b"ab".to_vec()]
    );
    let ff = between(b"\xff", None);
    assert_eq!(
        keys(e, &ff, true),
        vec![b"\xff\xff".to_vec(), b"\xff".to_vec()]
    );
    assert!(
        keys(e, &between(b"c", Some(b"c")), false).is_empty(),
        "empty range"
    );
    assert!(
        keys(e, &between(b"c", Some(b"a")), true).is_empty(),
        "inverted range"
    );
    assert!(
        keys(e, &between(b"abd", Some(b"b")), true).is_empty(),
        "gap"
    );
    assert_eq!(
        keys(e, &between(b"", Some(b"ab")), true),
        vec![b"a".to_vec()],
        "stop exclusive"
    );
    let with_values = e
        .scan(&between(b"b", Some(b"c")), false, ALL, false)
        .unwrap();
    assert_eq!(with_values, vec![(b"b".to_vec(), Some(b"b".to_vec()))]);
}

pub fn scan_limits(e: &mut dyn Engine) {
    let ops: Vec<_> = (0..100u32)
        .map(|i| put(&i.to_be_bytes(), &[7; 100]))
        .collect();
    e.write(&ops).unwrap();
    let three = ScanLimit {
        entries: 3,
        bytes: usize::MAX,
    };
    let got = e.scan(&Bounds::all(), true, three, true).unwrap();
    let want: Vec<_> = [99u32, 98, 97]
        .iter()
        .map(|i| (i.to_be_bytes().to_vec(), None))
        .collect();
    assert_eq!(got, want, "reverse limit 3");
    let small = ScanLimit {
        entries: usize::MAX,
        bytes: 250,
    };
    assert_eq!(
        e.scan(&Bounds::all(), false, small, false).unwrap().len(),
        3,
        "byte limit"
    );
    let tiny = ScanLimit {
        entries: usize::MAX,
        bytes: 1,
    };
    assert_eq!(
        e.scan(&Bounds::all(), false, tiny, false).unwrap().len(),
        1,
        "at least one"
    );
}

/// Paging back through a range, a page at a time, after deletes and
/// overwrites newer than most of the range (in LevelDB: deletion markers in
/// the memtable over keys in tables): every live key once, in order, none
/// deleted; with a key past the range and without.
pub fn reverse_pages(e: &mut dyn Engine) {
    let mut model = BTreeMap::new();
    for chunk in (0..3_000u32).collect::<Vec<_>>().chunks(100) {
        let ops: Vec<_> = chunk
            .iter()
            .map(|i| put(format!("r{i:05}").as_bytes(), &[b'v'; 40]))
            .collect();
        e.write(&ops).unwrap();
    }
    (0..3_000u32).for_each(|i| {
        model.insert(format!("r{i:05}").into_bytes(), vec![b'v'; 40]);
    });
    for i in (2_000..3_000u32).filter(|i| i % 3 != 1) {
        let k = format!("r{i:05}").into_bytes();
        if i % 3 == 0 {
            e.write(&[del(&k)]).unwrap();
            model.remove(&k);
        } else {
            e.write(&[put(&k, b"new")]).unwrap();
            model.insert(k, b"new".to_vec());
        }
    }
    let want: Vec<_> = model
        .iter()
        .rev()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    assert_eq!(
        page_back(e, 7),
        want,
        "reverse pages, nothing past the range"
    );
    e.write(&[put(b"s", b"past"), put(b"z", b"past")]).unwrap();
    assert_eq!(page_back(e, 7), want, "reverse pages, keys past the range");
    assert_eq!(page_back(e, 1), want, "reverse pages of one");
    let bytes = ScanLimit {
        entries: usize::MAX,
        bytes: 200,
    };
    let r = between(b"r", Some(b"s"));
    let got: Vec<_> = e
        .scan(&r, true, bytes, false)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect();
    let mut sum = 0;
    let fits = want.iter().take_while(|(k, v)| {
        let under = sum < 200;
        sum += k.len() + v.len();
        under
    });
    assert_eq!(got, fits.cloned().collect::<Vec<_>>(), "reverse byte limit");
}

/// Every entry of the `r` range, read back `n` at a time from its end.
fn page_back(e: &mut dyn Engine, n: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
    let limit = ScanLimit {
        entries: n,
        bytes: usize::MAX,
    };
    let mut upper = b"s".to_vec();
    let mut out = Vec::new();
    loop {
        let page = e
            .scan(&between(b"r", Some(&upper)), true, limit, false)
            .unwrap();
        assert!(
            page.len() <= n,
            "a page of {} over a limit of {n}",
            page.len()
        );
        let Some((last, _)) = page.last() else {
            return out;
        };
        upper = last.clone();
        out.extend(page.into_iter().map(|(k, v)| (k, v.unwrap_or_default())));
    }
}

/// A deterministic random workload of puts, deletes and batches, checked
/// against a model after every step with gets and scans both ways.
pub fn matches_model(e: &mut dyn Engine, seed: u64, steps: usize) {
    let mut model = BTreeMap::<Vec<u8>, Vec<u8>>::new();
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    for step in 0..steps {
        let n = next();
        let key = format!("k{:03}", n % 500).into_bytes();
        let value = vec![(n >> 8) as u8; (n >> 16) as usize % 300];
        let ops = match n % 10 {
            0..=5 => vec![put(&key, &value)],
            6 | 7 => vec![del(&key)],
            _ => (0..(n >> 20) % 20)
                .map(|i| {
                    let k = format!("k{:03}", (n >> (i % 40)) % 500).into_bytes();
                    if i % 3 == 0 {
                        del(&k)
                    } else {
                        put(&k, &value)
                    }
                })
                .collect(),
        };
        for op in &ops {
            match op {
                BatchOp::Put { key, value } => {
                    model.insert(key.clone(), value.clone());
                }
                BatchOp::Delete { key } => {
                    model.remove(key);
                }
            }
        }
        e.write(&ops).unwrap();
        assert_eq!(
            e.get(&key).unwrap(),
            model.get(&key).cloned(),
            "step {step} get"
        );
        if step % 97 == 0 {
            let lo = format!("k{:03}", next() % 500).into_bytes();
            let hi = format!("k{:03}", next() % 500).into_bytes();
            let b = between(&lo, Some(&hi));
            let want: Vec<_> = model
                .range(lo.clone()..)
                .take_while(|(k, _)| **k < hi)
                .map(|(k, _)| k.clone())
                .collect();
            assert_eq!(keys(e, &b, false), want, "step {step} forward scan");
            let mut want_rev = want;
            want_rev.reverse();
            assert_eq!(keys(e, &b, true), want_rev, "step {step} reverse scan");
        }
    }
    let all: Vec<_> = model.keys().cloned().collect();
    assert_eq!(keys(e, &Bounds::all(), false), all, "final forward scan");
}
