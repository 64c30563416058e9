//! Copies what the deployed services print (the supervisor's
//! `replica-<n>/app.log`) into the plug's log store, a few KiB at a time,
//! so it is kept rotated and bounded, and outlives an instance directory
//! removed by a rollback or a cleanup. Where each file was read up to is
//! kept in `logs/offsets` (one `PATH\tOFFSET` per line, saved after each
//! pass) so a stopped and restarted plug neither loses nor copies twice; a
//! plug killed between a pass's copy and its save copies that pass's lines
//! again (at most `PER_PASS` per file: logs are at least once, never lost
//! within retention); a file that shrank was recreated and is
//! read from its start. Once a file of at least `TRUNCATE_AT` bytes was
//! copied whole, it is emptied (the supervisor appends to it), so the
//! host's disk holds at most that much beside the rotated store. Every
//! file is opened from the root's handle, never through a symlink. The
//! offsets file is 0600, like the store's files.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::host_metrics::replicas;
use crate::logs::LogStore;

/// Most bytes copied from one file per pass: a chatty service cannot stall
/// the plug; the rest is copied at the next passes.
const PER_PASS: u64 = 256 * 1024;
/// A service's own log file is emptied once this much of it was copied.
const TRUNCATE_AT: u64 = 1024 * 1024;

pub struct Collector {
    root: PathBuf,
    offsets: BTreeMap<PathBuf, u64>,
}

impl Collector {
    pub fn new(root: &Path, store: &LogStore) -> Self {
        let mut offsets = BTreeMap::new();
        if let Ok(text) = fs::read_to_string(store.dir().join("offsets")) {
            for line in text.lines() {
                if let Some((p, o)) = line.rsplit_once('\t') {
                    if let Ok(o) = o.parse() {
                        offsets.insert(PathBuf::from(p), o);
                    }
                }
            }
        }
        Self {
            root: root.to_path_buf(),
            offsets,
        }
    }

    /// One pass over every replica's output.
    pub fn collect(&mut self, store: &LogStore) {
        let mut moved = false;
        let mut seen = BTreeMap::new();
        for r in replicas(&self.root) {
            if !store.accepts_service(&r.service) {
                continue;
            }
            // Opened from the root's handle, never through a symlink.
            let Ok(mut f) = r.dir.file("app.log") else {
                continue;
            };
            let path = self.root.join(&r.path).join("app.log");
            let len = f.metadata().map_or(0, |m| m.len());
            let mut from = self.offsets.get(&path).copied().unwrap_or(0);
            if len < from {
                from = 0;
            }
            // Only whole lines: the rest waits for its end.
            let mut buf = Vec::new();
            let took = f
                .seek(SeekFrom::Start(from))
                .and_then(|_| f.by_ref().take(PER_PASS).read_to_end(&mut buf));
            if took.is_err() {
                seen.insert(path, from);
                continue;
            }
            let whole = match buf.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                // A single line longer than a pass: taken as it is.
                None if buf.len() as u64 == PER_PASS => buf.len(),
                None => 0,
            };
            for line in buf[..whole].split(|b| *b == b'\n') {
                if !line.is_empty() {
                    store.service_line(&r.service, &r.instance, &r.replica, line);
                }
            }
            moved |= whole > 0;
            let upto = from + whole as u64;
            // Everything copied: a big file is emptied so the supervisor's
            // log stays bounded on the host; the store keeps its lines.
            if upto == len
                && len >= TRUNCATE_AT
                && r.dir.truncate_if_len("app.log", len).unwrap_or(false)
            {
                tracing::info!(event = "service_log_truncated", path = %path.display(), bytes = len);
                seen.insert(path, 0);
                continue;
            }
            seen.insert(path, upto);
        }
        let forgot = seen.len() != self.offsets.len();
        self.offsets = seen;
        if moved || forgot {
            let text: String = self
                .offsets
                .iter()
                .map(|(p, o)| format!("{}\t{o}\n", p.display()))
                .collect();
            let tmp = store.dir().join("offsets.tmp");
            // Synced before the rename: after a crash the offsets are the
            // old ones or the new ones, never an empty file.
            // The plug's user's only, like the logs it indexes.
            let saved = fs::OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)
                .and_then(|mut f| {
                    std::io::Write::write_all(&mut f, text.as_bytes())?;
                    f.sync_data()
                })
                .and_then(|()| fs::rename(&tmp, store.dir().join("offsets")));
            if saved.is_err() {
                tracing::warn!(event = "log_offsets_unsaved", dir = %store.dir().display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_wire::observe::{LogSource, LogsQuery, MAX_LOG_CHUNK};

    #[test]
    fn services_output_is_copied_once_even_across_a_restart() {
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let rep = root
            .path()
            .join("srv/services/auto-shop-prod-web/1/replica-1");
        fs::create_dir_all(&rep).unwrap();
        fs::write(rep.join("app.log"), "listening\nhalf a li").unwrap();
        let store = LogStore::open(state.path()).unwrap();
        Collector::new(root.path(), &store).collect(&store);
        let mut log = fs::OpenOptions::new()
            .append(true)
            .open(rep.join("app.log"))
            .unwrap();
        std::io::Write::write_all(&mut log, b"ne\nserved GET /\n").unwrap();
        // A new collector: a restarted plug, reading the saved offsets.
        Collector::new(root.path(), &store).collect(&store);
        let text = service_text(&store);
        let texts: Vec<&str> = text
            .lines()
            .map(|l| l.rsplit('\t').next().unwrap())
            .collect();
        assert_eq!(texts, ["listening", "half a line", "served GET /"]);
        for f in fs::read_dir(state.path()).unwrap().flatten() {
            let mode =
                std::os::unix::fs::PermissionsExt::mode(&f.metadata().unwrap().permissions());
            assert_eq!(mode & 0o777, 0o600, "{:?}", f.file_name());
        }
    }

    fn service_text(store: &LogStore) -> String {
        let mut text = String::new();
        let mut cursor = None;
        loop {
            let page = store
                .read(&LogsQuery {
                    host: "h".into(),
                    source: LogSource::Service {
                        name: "auto-shop-prod-web".into(),
                    },
                    since_ms: None,
                    cursor,
                    max_bytes: MAX_LOG_CHUNK,
                })
                .unwrap();
            text.push_str(&page.text);
            if !page.more {
                return text;
            }
            cursor = Some(page.cursor);
        }
    }

    #[test]
    fn a_symlinked_log_is_not_followed_and_a_big_one_is_emptied_once_copied() {
        let root = tempfile::tempdir().unwrap();
        let state = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("shadow"), "root:secret\n").unwrap();
        let inst = root.path().join("srv/services/auto-shop-prod-web/1");
        fs::create_dir_all(inst.join("replica-1")).unwrap();
        fs::create_dir_all(inst.join("replica-2")).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("shadow"),
            inst.join("replica-1/app.log"),
        )
        .unwrap();
        let big = "x".repeat(99) + "\n";
        let lines = (TRUNCATE_AT as usize).div_ceil(big.len());
        fs::write(inst.join("replica-2/app.log"), big.repeat(lines)).unwrap();
        let store = LogStore::open(state.path()).unwrap();
        let mut c = Collector::new(root.path(), &store);
        // A pass copies at most PER_PASS: enough passes to copy it all.
        for _ in 0..(TRUNCATE_AT / PER_PASS + 2) {
            c.collect(&store);
        }
        let text = service_text(&store);
        assert!(!text.contains("secret"), "a file outside the root was read");
        assert_eq!(text.matches(&big[..99]).count(), lines, "every line copied");
        assert_eq!(
            fs::metadata(inst.join("replica-2/app.log")).unwrap().len(),
            0,
            "emptied once copied"
        );
        assert_eq!(
            fs::read_to_string(outside.path().join("shadow")).unwrap(),
            "root:secret\n"
        );
        // What comes next is copied from the start of the emptied file.
        fs::write(inst.join("replica-2/app.log"), "after\n").unwrap();
        c.collect(&store);
        assert!(service_text(&store).ends_with("after\n"));
    }
}
