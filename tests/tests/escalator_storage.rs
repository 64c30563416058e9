//! Escalator's storage through the real server, after what a crash or a
//! full disk leaves in a log: a torn tail is cut at the last complete record
//! (and writes acknowledged after it survive the next restart); a log with
//! records appended after garbage (what rusty-leveldb alone leaves) refuses
//! to start, naming file and offset, and `vigie escalator repair` salvages
//! every intact record.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use vigie_escalator::engine::logfile::{self, LogKind, Record, BLOCK_SIZE};
use vigie_tests::{vigie_bin, Daemon, Escalator};

const WAIT: Duration = Duration::from_secs(20);

/// The newest write-ahead log of database `name`.
fn newest_log(data: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let dir = data.join("db").join(name);
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    logs.sort();
    logs.pop()
        .ok_or_else(|| anyhow::anyhow!("no log in {}", dir.display()))
}

fn records(log: &Path) -> anyhow::Result<Vec<Record>> {
    let s = logfile::scan(&std::fs::read(log)?, LogKind::WriteAhead);
    anyhow::ensure!(s.verdict == logfile::Verdict::Clean, "{:?}", s.verdict);
    Ok(s.records)
}

/// A server stopped after 5 small puts and one 40 KiB put (three
/// fragments): returns it, the log, and where the big record starts.
fn stopped_with_big_last_record(dir: &Path) -> anyhow::Result<(Escalator, PathBuf, Record)> {
    let mut esc = Escalator::start(dir, &[])?;
    let db = esc.client()?.create("d")?;
    for i in 0..5 {
        db.put(format!("k{i}").as_bytes(), b"before")?;
    }
    db.put(b"big", &vec![b'x'; 40_000])?;
    esc.daemon.terminate()?;
    let log = newest_log(&esc.data, "d")?;
    let big = records(&log)?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("empty log"))?;
    Ok((esc, log, big))
}

fn cut(log: &Path, len: u64) -> anyhow::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(log)?
        .set_len(len)?;
    Ok(())
}

/// Inside the big record's second fragment.
fn torn_at(big: &Record) -> u64 {
    let block_end = (big.offset / BLOCK_SIZE as u64 + 1) * BLOCK_SIZE as u64;
    block_end + 7 + 1_000
}

#[test]
fn writes_acknowledged_after_a_torn_tail_survive_the_next_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (mut esc, log, big) = stopped_with_big_last_record(dir.path())?;
    let torn = torn_at(&big);
    cut(&log, torn)?;

    esc.restart()?;
    let first_start = esc.daemon.events.clone();
    let db = esc.client()?.connect_db("d")?;
    for i in 0..20 {
        db.put(format!("after{i:02}").as_bytes(), b"acknowledged")?;
    }
    // A clean stop, then a start: the 20 acknowledged puts are all there.
    esc.daemon.terminate()?;
    esc.restart()?;
    let db = esc.client()?.connect_db("d")?;
    let mut missing = Vec::new();
    for i in 0..20 {
        if db.get(format!("after{i:02}").as_bytes())?.is_none() {
            missing.push(i);
        }
    }
    assert!(
        missing.is_empty(),
        "acknowledged puts lost after restart: {missing:?}"
    );
    for i in 0..5 {
        assert_eq!(
            db.get(format!("k{i}").as_bytes())?.as_deref(),
            Some(&b"before"[..])
        );
    }
    assert_eq!(
        db.get(b"big")?,
        None,
        "the torn write was never acknowledged"
    );
    // The first start said what it cut; the second had nothing to cut.
    let ev = first_start.wait("log_tail_cut", WAIT)?;
    assert_eq!(ev.u64("kept"), Some(big.offset), "{ev:?}");
    assert_eq!(ev.u64("dropped"), Some(torn - big.offset), "{ev:?}");
    assert_eq!(
        esc.daemon.events.count("log_tail_cut"),
        0,
        "nothing left to cut"
    );
    Ok(())
}

/// A write batch as LevelDB encodes it: one put.
fn batch(seq: u64, key: &[u8], value: &[u8]) -> Vec<u8> {
    let mut b = seq.to_le_bytes().to_vec();
    b.extend_from_slice(&1u32.to_le_bytes());
    b.push(1);
    b.push(key.len() as u8);
    b.extend_from_slice(key);
    b.push(value.len() as u8);
    b.extend_from_slice(value);
    b
}

#[test]
fn records_after_garbage_refuse_the_start_and_repair_salvages_them() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let (esc, log, big) = stopped_with_big_last_record(dir.path())?;
    // What rusty-leveldb alone left: a torn record, then the records of
    // writes acknowledged after a restart appended behind it (this tail
    // made every later start panic in its batch decoder).
    let torn = torn_at(&big);
    cut(&log, torn)?;
    let after: Vec<Vec<u8>> = (0..20u64)
        .map(|i| {
            batch(
                1_000 + i,
                format!("after{i:02}").as_bytes(),
                b"acknowledged",
            )
        })
        .collect();
    let mut f = std::fs::OpenOptions::new().append(true).open(&log)?;
    std::io::Write::write_all(&mut f, &logfile::encode_from(torn, &after))?;
    drop(f);

    let args = [
        "escalator".to_owned(),
        "--data".to_owned(),
        esc.data.display().to_string(),
        "--bind".to_owned(),
        esc.endpoint.clone(),
    ];
    let mut refused = Daemon::spawn(&args)?;
    let status = refused.wait_exit(WAIT)?;
    let stderr = refused.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    let want = format!("{}: corrupt at byte {}", log.display(), big.offset);
    assert!(stderr.contains(&want), "no {want:?} in: {stderr}");
    assert!(stderr.contains("vigie escalator repair"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let out = Command::new(vigie_bin())
        .args(["escalator", "repair", "--data"])
        .arg(&esc.data)
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("original kept as"), "{stdout}");
    assert!(log
        .with_file_name(format!(
            "{}.corrupt",
            log.file_name().unwrap_or_default().to_string_lossy()
        ))
        .is_file());

    let mut esc = esc;
    esc.restart()?;
    let db = esc.client()?.connect_db("d")?;
    for i in 0..20 {
        let k = format!("after{i:02}");
        assert_eq!(
            db.get(k.as_bytes())?.as_deref(),
            Some(&b"acknowledged"[..]),
            "{k}"
        );
    }
    for i in 0..5 {
        assert_eq!(
            db.get(format!("k{i}").as_bytes())?.as_deref(),
            Some(&b"before"[..])
        );
    }
    assert_eq!(db.get(b"big")?, None);
    Ok(())
}
