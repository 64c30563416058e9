//! The host's logs, kept by its plug in its state dir (`logs/`): the whole
//! output of every step's commands (`steps`) and the deployed services'
//! stdout/stderr (`service-<name>`, copied by `collect.rs`). Each source is
//! a series of files `SOURCE.GENERATION.log`, a new one begun past
//! [`ROTATE_BYTES`], the oldest deleted beyond [`KEEP_FILES`]: at most
//! `KEEP_FILES × ROTATE_BYTES` (8 MiB) per source. The files are the
//! host's: while the tower is unreachable nothing is lost within that
//! bound, and the tower reads them on demand (`read`).
//!
//! A record is one line: `AT_MS \t CHANGE \t STEP \t PHASE \t STREAM \t text`
//! (services: the instance and replica in place of change and step, `-`
//! for the phase).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use vigie_wire::observe::{LogCursor, LogSource, LogsPage, LogsQuery, MAX_LOG_CHUNK};

/// A source's file is rotated past this size.
pub const ROTATE_BYTES: u64 = 1024 * 1024;
/// Files kept per source (the one being written included).
pub const KEEP_FILES: u64 = 8;
/// Services whose output a store keeps: what an app in the host root can
/// make the plug write (a directory `auto-…` a source) is bounded, at
/// most this many times `KEEP_FILES` × `ROTATE_BYTES`.
pub const MAX_SERVICE_SOURCES: usize = 64;
/// Refused service names remembered, so they are not looked up again.
const MAX_REFUSED: usize = 4_096;
/// The longest line kept whole; longer output is cut into such lines.
const MAX_LINE: usize = 16 * 1024;

/// The files of one source, appended to.
struct Rotating {
    dir: PathBuf,
    source: String,
    generation: u64,
    file: Option<File>,
    len: u64,
}

fn file_name(source: &str, generation: u64) -> String {
    format!("{source}.{generation:012}.log")
}

/// The generations of `source` in `dir`, oldest first.
fn generations(dir: &Path, source: &str) -> Vec<u64> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    let head = format!("{source}.");
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(&head) else {
            continue;
        };
        if let Some(g) = rest.strip_suffix(".log").and_then(|g| g.parse().ok()) {
            out.push(g);
        }
    }
    out.sort_unstable();
    out
}

impl Rotating {
    fn new(dir: &Path, source: &str) -> Self {
        let generation = generations(dir, source).last().copied().unwrap_or(1);
        Self {
            dir: dir.to_path_buf(),
            source: source.to_owned(),
            generation,
            file: None,
            len: 0,
        }
    }

    fn append(&mut self, record: &[u8]) -> std::io::Result<()> {
        if self.file.is_some() && self.len >= ROTATE_BYTES {
            self.file = None;
            self.generation += 1;
            let oldest = self.generation.saturating_sub(KEEP_FILES - 1);
            for g in generations(&self.dir, &self.source) {
                if g < oldest {
                    let _ = fs::remove_file(self.dir.join(file_name(&self.source, g)));
                }
            }
        }
        if self.file.is_none() {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(self.dir.join(file_name(&self.source, self.generation)))?;
            self.len = f.metadata()?.len();
            self.file = Some(f);
        }
        if let Some(f) = &mut self.file {
            f.write_all(record)?;
            self.len += record.len() as u64;
        }
        Ok(())
    }
}

/// The step whose output is being written.
#[derive(Clone)]
struct StepContext {
    change: String,
    step: u32,
    phase: &'static str,
}

#[derive(Default)]
struct Inner {
    context: Option<StepContext>,
    /// A line not yet ended, per stream.
    partial: BTreeMap<&'static str, Vec<u8>>,
    sources: BTreeMap<String, Rotating>,
    /// Services refused for the cap (at most `MAX_REFUSED` remembered; the
    /// first `MAX_SERVICE_SOURCES` of them said in a warning).
    refused: std::collections::BTreeSet<String>,
}

/// The service sources that have files in `dir`.
fn service_sources(dir: &Path) -> std::collections::BTreeSet<String> {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let source = name.strip_prefix("service-")?.split('.').next()?;
            Some(format!("service-{source}"))
        })
        .collect()
}

/// A host's log store (see the module doc).
pub struct LogStore {
    dir: PathBuf,
    inner: Mutex<Inner>,
}

/// A name safe in a file name: `auto-…` services, change ids.
pub fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn source_of(source: &LogSource) -> Result<String, String> {
    match source {
        LogSource::Steps { .. } => Ok("steps".to_owned()),
        LogSource::Service { name } if safe_name(name) && name.starts_with("auto-") => {
            Ok(format!("service-{name}"))
        }
        LogSource::Service { name } => Err(format!(
            "{name:?} is not a deployed service's name (auto-APP-ENV-SERVICE)"
        )),
    }
}

impl LogStore {
    /// Opens (makes) the store in `dir`, private to the plug's user.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner::default()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The output that follows belongs to this step (until `end_step`).
    pub fn begin_step(&self, change: &str, step: u32, phase: &'static str) {
        let mut inner = self.lock();
        inner.context = Some(StepContext {
            change: change.to_owned(),
            step,
            phase,
        });
    }

    /// Writes what is left of unended lines, and forgets the step.
    pub fn end_step(&self) {
        let mut inner = self.lock();
        let partial = std::mem::take(&mut inner.partial);
        for (stream, rest) in partial {
            if !rest.is_empty() {
                Self::step_line(&mut inner, stream, &rest);
            }
        }
        inner.context = None;
    }

    fn step_line(inner: &mut Inner, stream: &'static str, line: &[u8]) {
        let Some(ctx) = inner.context.clone() else {
            return;
        };
        let record = format!(
            "{}\t{}\t{}\t{}\t{stream}\t{}\n",
            crate::plug::now_ms(),
            ctx.change,
            ctx.step,
            ctx.phase,
            String::from_utf8_lossy(line).trim_end_matches('\r')
        );
        Self::append(inner, "steps", record.as_bytes());
    }

    fn append(inner: &mut Inner, source: &str, record: &[u8]) {
        if let Some(r) = inner.sources.get_mut(source) {
            if let Err(e) = r.append(record) {
                tracing::warn!(event = "log_write_failed", source, error = %e);
            }
        }
    }

    fn ensure(&self, inner: &mut Inner, source: &str) {
        if !inner.sources.contains_key(source) {
            inner
                .sources
                .insert(source.to_owned(), Rotating::new(&self.dir, source));
        }
    }

    /// Whether the output of `service` is kept: a safe `auto-…` name, and
    /// one of at most [`MAX_SERVICE_SOURCES`] (those with files here
    /// count, from earlier runs too). Asked once per file and pass, not
    /// per line.
    pub fn accepts_service(&self, service: &str) -> bool {
        if !safe_name(service) || !service.starts_with("auto-") {
            return false;
        }
        let source = format!("service-{service}");
        let mut inner = self.lock();
        if inner.sources.contains_key(&source) {
            return true;
        }
        // Once refused, refused for good (sources are never removed): a
        // refused name costs no directory scan at the next passes.
        if inner.refused.contains(&source) {
            return false;
        }
        // Sources accepted but not written yet count as much as files.
        let mut known = service_sources(&self.dir);
        known.extend(
            inner
                .sources
                .keys()
                .filter(|k| k.starts_with("service-"))
                .cloned(),
        );
        if known.contains(&source) || known.len() < MAX_SERVICE_SOURCES {
            self.ensure(&mut inner, &source);
            return true;
        }
        if inner.refused.len() < MAX_REFUSED {
            if inner.refused.len() < MAX_SERVICE_SOURCES {
                tracing::warn!(
                    event = "log_source_refused",
                    service,
                    max = MAX_SERVICE_SOURCES
                );
            }
            inner.refused.insert(source);
        }
        false
    }

    /// One line of a deployed service's output (see `collect.rs`), kept
    /// if [`Self::accepts_service`] said so.
    pub fn service_line(&self, service: &str, instance: &str, replica: &str, line: &[u8]) {
        let source = format!("service-{service}");
        let record = format!(
            "{}\t{instance}\t{replica}\t-\tout\t{}\n",
            crate::plug::now_ms(),
            String::from_utf8_lossy(line).trim_end_matches('\r')
        );
        let mut inner = self.lock();
        Self::append(&mut inner, &source, record.as_bytes());
    }

    /// A chunk of a source's records, from the cursor (or the oldest kept),
    /// filtered by time and change, at most `max_bytes` of text.
    pub fn read(&self, q: &LogsQuery) -> Result<LogsPage, String> {
        let source = source_of(&q.source)?;
        let change = match &q.source {
            LogSource::Steps { change } => change.as_deref(),
            LogSource::Service { .. } => None,
        };
        let max = q.max_bytes.clamp(1, MAX_LOG_CHUNK) as usize;
        let gens = generations(&self.dir, &source);
        let Some(&oldest) = gens.first() else {
            if let LogSource::Service { name } = &q.source {
                return Err(format!("no logs of service {name} on this host"));
            }
            // Nothing yet: go on from the first file that will be written.
            return Ok(LogsPage {
                cursor: q.cursor.unwrap_or(LogCursor {
                    generation: 1,
                    offset: 0,
                }),
                ..LogsPage::default()
            });
        };
        let rotated_away = oldest > 1;
        let mut page = LogsPage::default();
        let mut start = q.cursor.unwrap_or(LogCursor {
            generation: oldest,
            offset: 0,
        });
        if start.generation < oldest {
            page.beyond_retention = Some(format!(
                "logs from where the last read stopped were rotated away (the host keeps {} files \
                 of {} KiB per source): showing from the oldest kept",
                KEEP_FILES,
                ROTATE_BYTES / 1024
            ));
            start = LogCursor {
                generation: oldest,
                offset: 0,
            };
        }
        page.cursor = start;
        let mut first_at: Option<u64> = None;
        'files: for &g in gens.iter().filter(|g| **g >= start.generation) {
            let Ok(mut f) = File::open(self.dir.join(file_name(&source, g))) else {
                continue;
            };
            let mut offset = if g == start.generation {
                start.offset
            } else {
                0
            };
            if f.seek(SeekFrom::Start(offset)).is_err() {
                continue;
            }
            let mut reader = BufReader::new(f);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if !line.ends_with(b"\n") => break, // being written
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&line);
                        let mut fields = text.splitn(3, '\t');
                        let at: u64 = fields.next().and_then(|t| t.parse().ok()).unwrap_or(0);
                        let who = fields.next().unwrap_or("");
                        if g == oldest && first_at.is_none() {
                            first_at = Some(at);
                        }
                        let wanted =
                            q.since_ms.is_none_or(|s| at >= s) && change.is_none_or(|c| c == who);
                        if wanted {
                            if !page.text.is_empty() && page.text.len() + text.len() > max {
                                page.more = true;
                                break 'files;
                            }
                            if text.len() > max {
                                // One line longer than a chunk: its head,
                                // so no answer holds more than was asked.
                                let mut end = max;
                                while !text.is_char_boundary(end) {
                                    end -= 1;
                                }
                                page.text.push_str(&text[..end]);
                            } else {
                                page.text.push_str(&text);
                            }
                        }
                        offset += n as u64;
                        page.cursor = LogCursor {
                            generation: g,
                            offset,
                        };
                    }
                }
            }
        }
        if let (Some(since), Some(first), true, None) =
            (q.since_ms, first_at, rotated_away, &page.beyond_retention)
        {
            if since < first && q.cursor.is_none() {
                page.beyond_retention = Some(format!(
                    "the host keeps logs from {first} (Unix ms) on ({} files of {} KiB per \
                     source): the start of the window was rotated away",
                    KEEP_FILES,
                    ROTATE_BYTES / 1024
                ));
            }
        }
        Ok(page)
    }
}

impl vigie_drivers::OutputSink for LogStore {
    fn write(&self, stream: &'static str, bytes: &[u8]) {
        let mut inner = self.lock();
        if inner.context.is_none() {
            return;
        }
        self.ensure(&mut inner, "steps");
        let mut buf = inner.partial.remove(stream).unwrap_or_default();
        buf.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(nl) = buf[start..].iter().position(|b| *b == b'\n') {
            let line = buf[start..start + nl].to_vec();
            Self::step_line(&mut inner, stream, &line);
            start += nl + 1;
        }
        let mut rest = buf.split_off(start);
        while rest.len() > MAX_LINE {
            let tail = rest.split_off(MAX_LINE);
            Self::step_line(&mut inner, stream, &rest);
            rest = tail;
        }
        inner.partial.insert(stream, rest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_drivers::OutputSink;

    fn query(change: Option<&str>, cursor: Option<LogCursor>) -> LogsQuery {
        LogsQuery {
            host: "h".into(),
            source: LogSource::Steps {
                change: change.map(str::to_owned),
            },
            since_ms: None,
            cursor,
            max_bytes: MAX_LOG_CHUNK,
        }
    }

    #[test]
    fn a_step_s_whole_output_is_kept_by_change_and_read_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store.begin_step("c-1", 0, "apply");
        for i in 0..200 {
            store.write("stdout", format!("line {i} of c-1\n").as_bytes());
        }
        store.write("stderr", b"no newline at the end");
        store.end_step();
        store.begin_step("c-2", 0, "apply");
        store.write("stdout", b"other change\n");
        store.end_step();

        let page = store.read(&query(Some("c-1"), None)).unwrap();
        assert_eq!(page.text.lines().count(), 201, "{}", page.text);
        assert!(page.text.contains("\tstderr\tno newline at the end\n"));
        assert!(!page.text.contains("other change"));
        assert!(!page.more);

        // In small chunks, following the cursor, nothing is lost or doubled.
        let mut all = String::new();
        let mut cursor = None;
        loop {
            let mut q = query(Some("c-1"), cursor);
            q.max_bytes = 500;
            let p = store.read(&q).unwrap();
            all.push_str(&p.text);
            cursor = Some(p.cursor);
            if !p.more {
                break;
            }
        }
        assert_eq!(all, page.text);
    }

    #[test]
    fn old_files_are_rotated_away_and_a_read_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store.begin_step("c-1", 0, "apply");
        let line = vec![b'x'; 1000];
        let mut chunk = line.clone();
        chunk.push(b'\n');
        let total = (KEEP_FILES + 3) * ROTATE_BYTES / 1000;
        for _ in 0..total {
            store.write("stdout", &chunk);
        }
        store.end_step();
        let gens = generations(dir.path(), "steps");
        assert_eq!(gens.len() as u64, KEEP_FILES, "{gens:?}");
        let q = LogsQuery {
            since_ms: Some(1),
            ..query(None, None)
        };
        let page = store.read(&q).unwrap();
        assert!(page.beyond_retention.is_some());
        let page = store
            .read(&query(
                None,
                Some(LogCursor {
                    generation: 1,
                    offset: 0,
                }),
            ))
            .unwrap();
        assert!(page.beyond_retention.unwrap().contains("rotated away"));
    }

    #[test]
    fn following_an_empty_store_is_not_beyond_retention() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let first = store.read(&query(None, None)).unwrap();
        store.begin_step("c-1", 0, "apply");
        store.write("stdout", b"later\n");
        store.end_step();
        let next = store.read(&query(None, Some(first.cursor))).unwrap();
        assert_eq!(next.beyond_retention, None);
        assert!(next.text.ends_with("\tstdout\tlater\n"), "{}", next.text);
    }

    #[test]
    fn an_app_cannot_make_the_store_keep_more_than_its_cap_of_services() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        for i in 0..MAX_SERVICE_SOURCES {
            let name = format!("auto-s-{i}");
            assert!(store.accepts_service(&name));
            // Half of them have written nothing yet: they count too.
            if i % 2 == 0 {
                store.service_line(&name, "1", "1", b"up");
            }
        }
        assert!(!store.accepts_service("auto-one-more"));
        assert!(!store.accepts_service("auto-../../etc"), "not a safe name");
        assert!(!store.accepts_service("postgres"), "not the deployer's");
        assert!(store.accepts_service("auto-s-3"), "a known one still is");
        // A restarted plug counts what is on disk (only half written).
        let again = LogStore::open(dir.path()).unwrap();
        assert!(again.accepts_service("auto-s-0"));
        assert!(again.accepts_service("auto-one-more"), "room left on disk");
    }

    #[test]
    fn a_service_name_outside_the_deployer_s_namespace_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let mut q = query(None, None);
        q.source = LogSource::Service {
            name: "../journal".into(),
        };
        assert!(store.read(&q).unwrap_err().contains("not a deployed"));
    }
}
