//! Copies what the deployed services print (the supervisor's
//! `replica-<n>/app.log`) into the plug's log store, a few KiB at a time,
//! so it is kept rotated and bounded, and outlives an instance directory
//! removed by a rollback or a cleanup. Where each file was read up to is
//! kept in `logs/offsets` (one `PATH\tOFFSET` per line) so a restarted plug
//! neither loses nor copies twice; a file that shrank was recreated and is
//! read from its start.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::host_metrics::replicas;
use crate::logs::LogStore;

/// Most bytes copied from one file per pass: a chatty service cannot stall
/// the plug; the rest is copied at the next passes.
const PER_PASS: u64 = 256 * 1024;

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
            let path = r.dir.join("app.log");
            let Ok(mut f) = File::open(&path) else {
                continue;
            };
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
            seen.insert(path, from + whole as u64);
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
            if fs::write(&tmp, text)
                .and_then(|()| fs::rename(&tmp, store.dir().join("offsets")))
                .is_err()
            {
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
        let page = store
            .read(&LogsQuery {
                host: "h".into(),
                source: LogSource::Service {
                    name: "auto-shop-prod-web".into(),
                },
                since_ms: None,
                cursor: None,
                max_bytes: MAX_LOG_CHUNK,
            })
            .unwrap();
        let texts: Vec<&str> = page
            .text
            .lines()
            .map(|l| l.rsplit('\t').next().unwrap())
            .collect();
        assert_eq!(texts, ["listening", "half a line", "served GET /"]);
    }
}
