//! A full disk, for real: the data dir on a 2 MiB tmpfs filled up to a few
//! pages. Writes then fail with an error reply (a short write(2) is not
//! taken for a whole one), the server stays up and serves reads, writes
//! resume once space is freed, and after a restart every acknowledged write
//! is there and no failed one is half there.

use std::collections::BTreeMap;
use std::path::Path;

use vigie_escalator::{EscalatorError, FaultKind};
use vigie_tests::tmpfs::Tmpfs;
use vigie_tests::Escalator;

fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    let s = nix::sys::statvfs::statvfs(dir)?;
    Ok(s.blocks_available() * s.fragment_size())
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("value-{i}:").into_bytes();
    v.resize(10_050, b'a' + (i % 26) as u8);
    v
}

#[test]
fn a_full_disk_fails_writes_keeps_serving_and_loses_nothing_acknowledged() -> anyhow::Result<()> {
    let outer = tempfile::tempdir()?;
    let mnt = outer.path().join("small");
    std::fs::create_dir(&mnt)?;
    let Some(_tmpfs) = Tmpfs::mount(&mnt, "2m")? else {
        return Ok(());
    };
    let mut esc = Escalator::start(&mnt, &[])?;
    let db = esc.client()?.create("d")?;
    db.put(b"first", &value(0))?;

    // Leave about 7 pages: a few 10 KiB records fit, then one is cut short.
    let filler = mnt.join("filler");
    let fill = free_bytes(&mnt)?.saturating_sub(7 * 4096);
    std::fs::write(&filler, vec![0u8; fill as usize])?;

    let mut acked = BTreeMap::new();
    acked.insert(0usize, "first".to_owned());
    let mut failed = Vec::new();
    for i in 1..40 {
        let key = format!("k{i:02}");
        match db.put(key.as_bytes(), &value(i)) {
            Ok(()) => {
                acked.insert(i, key);
            }
            Err(EscalatorError::Fault(f)) => {
                assert_eq!(f.kind, FaultKind::Storage, "{f}");
                assert!(f.message.contains("No space left on device"), "{f}");
                failed.push((i, key));
                if failed.len() >= 5 {
                    break;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    assert!(
        failed.len() >= 5,
        "the disk never filled: {} writes acknowledged",
        acked.len()
    );

    // Still up, and reads are served.
    esc.client()?.ping()?;
    assert_eq!(db.get(b"first")?, Some(value(0)));
    for (i, k) in &acked {
        if *i > 0 {
            assert_eq!(db.get(k.as_bytes())?, Some(value(*i)), "{k}");
        }
    }

    // Space is back: writes resume.
    std::fs::remove_file(&filler)?;
    for i in 100..110 {
        let key = format!("k{i}");
        db.put(key.as_bytes(), &value(i))?;
        acked.insert(i, key);
    }

    esc.daemon.terminate()?;
    esc.restart()?;
    let db = esc.client()?.connect_db("d")?;
    for (i, k) in &acked {
        assert_eq!(
            db.get(k.as_bytes())?,
            Some(value(*i)),
            "acknowledged {k} lost"
        );
    }
    // A failed write is absent or whole, never half there.
    for (i, k) in &failed {
        let got = db.get(k.as_bytes())?;
        assert!(got.is_none() || got == Some(value(*i)), "{k} half there");
    }
    esc.daemon.terminate()?;
    Ok(())
}
