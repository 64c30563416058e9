//! The host's logs, kept by its plug in its state dir (`logs/`): the whole
//! output of every step's commands (`steps`) and the deployed services'
//! stdout/stderr (`service-<name>`, copied by `collect.rs`). Each source is
//! a series of files `SOURCE.GENERATION.log` (0600), a new one begun past
//! the budget's rotation size (at most [`ROTATE_BYTES`]), at most
//! [`KEEP_FILES`] kept per source. Every source together stays within the
//! store's budget (`log_budget.rs`): past it, or when writing would take
//! the free space kept for the journal, the least recently written file
//! is dropped first; a record that still does not fit is dropped (counted,
//! `log_records_dropped`), never written into the journal's room. The
//! files are the host's: while the tower is unreachable nothing is lost
//! within that bound, and the tower reads them on demand (`read`).
//!
//! A record is one line: `AT_MS \t CHANGE \t STEP \t PHASE \t STREAM \t text`
//! (services: the instance and replica in place of change and step, `-`
//! for the phase).

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::log_budget::{self, LogBudget};

use vigie_wire::observe::{LogCursor, LogSource, LogsPage, LogsQuery, MAX_LOG_CHUNK};

pub use crate::log_budget::{KEEP_FILES, ROTATE_BYTES};
/// Services whose output a store keeps: an app in the host root cannot
/// make the plug keep a source per directory `auto-…` it makes (their
/// bytes are bounded by the store's budget anyway).
pub const MAX_SERVICE_SOURCES: usize = 64;
/// Refused service names remembered, so they are not looked up again.
const MAX_REFUSED: usize = 4_096;
/// The longest line kept whole; longer output is cut into such lines.
const MAX_LINE: usize = 16 * 1024;
/// Dropped records are said at most this often (with their count).
const DROPS_SAID_EVERY: Duration = Duration::from_secs(10);

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

    /// Appends `record`, first rotating past `rotate_bytes`; returns the
    /// bytes of the old files the rotation removed. A failed write is cut
    /// back, so no half record is left before the next one.
    fn append(&mut self, record: &[u8], rotate_bytes: u64) -> std::io::Result<u64> {
        let mut removed = 0;
        if self.file.is_some() && self.len >= rotate_bytes {
            self.file = None;
            self.generation += 1;
            let oldest = self.generation.saturating_sub(KEEP_FILES - 1);
            for g in generations(&self.dir, &self.source) {
                if g < oldest {
                    removed += remove(&self.dir.join(file_name(&self.source, g)));
                }
            }
        }
        if self.file.is_none() {
            // Its user's only, whatever the umask the plug works under: a
            // step's output may hold secrets.
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(self.dir.join(file_name(&self.source, self.generation)))?;
            self.len = f.metadata()?.len();
            self.file = Some(f);
        }
        if let Some(f) = &mut self.file {
            if let Err(e) = f.write_all(record) {
                let _ = f.set_len(self.len);
                return Err(e);
            }
            self.len += record.len() as u64;
        }
        Ok(removed)
    }

    /// The file being written was dropped: the next record begins the
    /// next generation.
    fn dropped(&mut self, generation: u64) {
        if generation >= self.generation {
            self.file = None;
            self.generation = generation + 1;
            self.len = 0;
        }
    }
}

/// Removes a file; returns its size (0 if it could not be removed).
fn remove(path: &Path) -> u64 {
    let len = fs::metadata(path).map_or(0, |m| m.len());
    match fs::remove_file(path) {
        Ok(()) => len,
        Err(_) => 0,
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
    /// Bytes of every file of the store.
    total: u64,
    /// Bytes that may be written before free space is asked again.
    room: u64,
    /// Records dropped for want of room and not said yet, and when they
    /// were last said.
    dropped: u64,
    dropped_said: Option<Instant>,
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
    budget: LogBudget,
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
    /// Opens (makes) the store in `dir`, private to the plug's user, with
    /// the default budget for its filesystem.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        Self::open_with(dir, LogBudget::for_dir(dir, None, None))
    }

    /// Opens (makes) the store in `dir` within `budget`. Files left
    /// readable by others (by an older plug) are narrowed to 0600.
    pub fn open_with(dir: &Path, budget: LogBudget) -> std::io::Result<Self> {
        fs::create_dir_all(dir)?;
        for e in fs::read_dir(dir)?.flatten() {
            let Ok(meta) = e.metadata() else { continue };
            if meta.is_file() && meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(e.path(), Permissions::from_mode(0o600))?;
            }
        }
        let total = log_budget::files(dir).iter().map(|f| f.len).sum();
        tracing::info!(event = "log_store_opened", dir = %dir.display(), bytes = total, max_bytes = budget.max_bytes, reserve_bytes = budget.reserve_bytes);
        Ok(Self {
            dir: dir.to_path_buf(),
            budget,
            inner: Mutex::new(Inner {
                total,
                ..Inner::default()
            }),
        })
    }

    pub fn budget(&self) -> LogBudget {
        self.budget
    }

    /// What the host keeps, for a reader told that logs were dropped.
    fn retention(&self) -> String {
        format!(
            "the host keeps {} KiB of logs at most, {} files of {} KiB per source",
            self.budget.max_bytes / 1024,
            KEEP_FILES,
            self.budget.rotate_bytes() / 1024
        )
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
                self.step_line(&mut inner, stream, &rest);
            }
        }
        inner.context = None;
    }

    fn step_line(&self, inner: &mut Inner, stream: &'static str, line: &[u8]) {
        let Some(ctx) = inner.context.clone() else {
            return;
        };
        let record = format!(
            "{}\t{}\t{}\t{}\t{stream}\t{}\n",
            crate::clock::now_ms(),
            ctx.change,
            ctx.step,
            ctx.phase,
            String::from_utf8_lossy(line).trim_end_matches('\r')
        );
        self.append(inner, "steps", record.as_bytes());
    }

    fn append(&self, inner: &mut Inner, source: &str, record: &[u8]) {
        let n = record.len() as u64;
        if !inner.sources.contains_key(source) {
            return;
        }
        if !self.make_room(inner, n) {
            self.count_drop(inner);
            return;
        }
        let rotate = self.budget.rotate_bytes();
        let Some(r) = inner.sources.get_mut(source) else {
            return;
        };
        match r.append(record, rotate) {
            Ok(removed) => {
                inner.total = (inner.total + n).saturating_sub(removed);
                inner.room = inner.room.saturating_sub(n);
            }
            Err(e) => {
                inner.room = 0;
                tracing::warn!(event = "log_write_failed", source, error = %e);
                self.count_drop(inner);
            }
        }
    }

    /// Makes room for `n` more bytes: within the budget, and outside the
    /// journal's reserve, dropping the oldest files as needed. False when
    /// even an empty store would not leave the reserve free.
    fn make_room(&self, inner: &mut Inner, n: u64) -> bool {
        while inner.total + n > self.budget.max_bytes {
            if !self.drop_oldest(inner) {
                return false;
            }
        }
        while inner.room < n {
            let free = match log_budget::free_bytes(&self.dir) {
                Ok(f) => f,
                Err(e) => {
                    tracing::warn!(event = "log_space_unknown", dir = %self.dir.display(), error = %e);
                    return false;
                }
            };
            let room = free.saturating_sub(self.budget.reserve_bytes);
            if room >= n {
                inner.room = room.min(log_budget::CHECK_EVERY);
                return true;
            }
            if !self.drop_oldest(inner) {
                inner.room = 0;
                return false;
            }
        }
        true
    }

    /// Removes the store's least recently written file. False when there
    /// is none.
    fn drop_oldest(&self, inner: &mut Inner) -> bool {
        let files = log_budget::files(&self.dir);
        let Some(f) = log_budget::oldest(&files) else {
            inner.total = 0;
            return false;
        };
        let path = self.dir.join(file_name(&f.source, f.generation));
        if let Some(r) = inner.sources.get_mut(&f.source) {
            r.dropped(f.generation);
        }
        if let Err(e) = fs::remove_file(&path) {
            tracing::warn!(event = "log_drop_failed", path = %path.display(), error = %e);
            return false;
        }
        inner.total = inner.total.saturating_sub(f.len);
        tracing::debug!(event = "log_file_dropped", log = %f.source, generation = f.generation, bytes = f.len);
        true
    }

    /// A record was dropped: said at once, then at most every
    /// `DROPS_SAID_EVERY` with how many.
    fn count_drop(&self, inner: &mut Inner) {
        inner.dropped += 1;
        let now = Instant::now();
        if inner
            .dropped_said
            .is_none_or(|t| now.duration_since(t) >= DROPS_SAID_EVERY)
        {
            tracing::warn!(
                event = "log_records_dropped",
                dir = %self.dir.display(),
                records = inner.dropped,
                reserve_bytes = self.budget.reserve_bytes,
                reason = "no room outside the journal's reserve"
            );
            inner.dropped = 0;
            inner.dropped_said = Some(now);
        }
    }

    /// The journal could not be written: drops the oldest log files until
    /// the reserve is free again (or none is left), so the plug recovers
    /// by itself when its own logs were what filled the disk. Returns the
    /// bytes freed.
    pub fn yield_space(&self) -> u64 {
        let mut inner = self.lock();
        inner.room = 0;
        let before = inner.total;
        let mut files = 0;
        while log_budget::free_bytes(&self.dir).is_ok_and(|f| f < self.budget.reserve_bytes) {
            if !self.drop_oldest(&mut inner) {
                break;
            }
            files += 1;
        }
        let freed = before.saturating_sub(inner.total);
        if files > 0 {
            tracing::warn!(event = "logs_yielded", dir = %self.dir.display(), files, bytes = freed);
        }
        freed
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
            crate::clock::now_ms(),
            String::from_utf8_lossy(line).trim_end_matches('\r')
        );
        let mut inner = self.lock();
        self.append(&mut inner, &source, record.as_bytes());
    }

    /// A chunk of a source's records, from the cursor (or the oldest kept),
    /// filtered by time and change, at most `max_bytes` of text.
    /// `source`'s file of generation `g`, read from `offset`.
    fn open_at(&self, source: &str, g: u64, offset: u64) -> Option<BufReader<File>> {
        let mut f = File::open(self.dir.join(file_name(source, g))).ok()?;
        f.seek(SeekFrom::Start(offset)).ok()?;
        Some(BufReader::new(f))
    }

    /// Where a read starts: the caller's cursor, or the oldest file kept
    /// (said in the page when the cursor's was rotated away).
    fn start(&self, cursor: Option<LogCursor>, oldest: u64, page: &mut LogsPage) -> LogCursor {
        let from_oldest = LogCursor {
            generation: oldest,
            offset: 0,
        };
        match cursor {
            Some(c) if c.generation < oldest => {
                page.beyond_retention = Some(format!(
                    "logs from where the last read stopped were rotated away ({}): showing \
                     from the oldest kept",
                    self.retention()
                ));
                from_oldest
            }
            Some(c) => c,
            None => from_oldest,
        }
    }

    pub fn read(&self, q: &LogsQuery) -> Result<LogsPage, String> {
        let source = source_of(&q.source)?;
        let change = match &q.source {
            LogSource::Steps { change } => change.as_deref(),
            LogSource::Service { .. } => None,
        };
        let max = q.max_bytes.clamp(1, MAX_LOG_CHUNK) as usize;
        let gens = generations(&self.dir, &source);
        let Some(&oldest) = gens.first() else {
            let deployed = self.lock().sources.contains_key(&source);
            return nothing_yet(q, deployed);
        };
        let rotated_away = oldest > 1;
        let mut page = LogsPage::default();
        let start = self.start(q.cursor, oldest, &mut page);
        page.cursor = start;
        let mut first_at: Option<u64> = None;
        'files: for &g in gens.iter().filter(|g| **g >= start.generation) {
            let mut offset = if g == start.generation {
                start.offset
            } else {
                0
            };
            let Some(mut reader) = self.open_at(&source, g, offset) else {
                continue;
            };
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
                        let recent = q.since_ms.is_none_or(|s| at >= s);
                        let ours = change.is_none_or(|c| c == who);
                        if ours && !recent {
                            page.skipped_bytes += n as u64;
                        }
                        if recent && ours && !take(&mut page, &text, max) {
                            break 'files;
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
                    "the host keeps logs from {first} (Unix ms) on ({}): the start of the window \
                     was rotated away",
                    self.retention()
                ));
            }
        }
        Ok(page)
    }
}

/// The answer of a store with no file of the source yet. A service the
/// collector found deployed here (`deployed`) that printed nothing is
/// quiet, not missing: an empty page, like the steps' before the first
/// step. A name no replica here bears is the caller's mistake.
fn nothing_yet(q: &LogsQuery, deployed: bool) -> Result<LogsPage, String> {
    if let (LogSource::Service { name }, false) = (&q.source, deployed) {
        return Err(format!(
            "no logs of service {name} on this host: no replica of it was found here"
        ));
    }
    // Nothing yet: go on from the first file that will be written.
    Ok(LogsPage {
        cursor: q.cursor.unwrap_or(LogCursor {
            generation: 1,
            offset: 0,
        }),
        ..LogsPage::default()
    })
}

/// Adds a wanted line to `page`; false, and `more` said, when it does not
/// fit in what is left of the chunk.
fn take(page: &mut LogsPage, text: &str, max: usize) -> bool {
    if !page.text.is_empty() && page.text.len() + text.len() > max {
        page.more = true;
        return false;
    }
    if text.len() > max {
        // One line longer than a chunk: its head, so no answer holds more
        // than was asked.
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        page.text.push_str(&text[..end]);
    } else {
        page.text.push_str(text);
    }
    true
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
            self.step_line(&mut inner, stream, &line);
            start += nl + 1;
        }
        let mut rest = buf.split_off(start);
        while rest.len() > MAX_LINE {
            let tail = rest.split_off(MAX_LINE);
            self.step_line(&mut inner, stream, &rest);
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
    fn a_read_since_the_end_of_time_skips_to_the_end_and_counts_what_it_passed() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store.begin_step("c-1", 0, "apply");
        store.write("stdout", b"one\ntwo\n");
        store.end_step();
        store.begin_step("c-2", 0, "apply");
        store.write("stdout", b"other\n");
        store.end_step();
        let all = store.read(&query(Some("c-1"), None)).unwrap();
        let skip = LogsQuery {
            since_ms: Some(u64::MAX),
            ..query(Some("c-1"), None)
        };
        let page = store.read(&skip).unwrap();
        assert_eq!(page.text, "");
        assert!(!page.more);
        // The change asked for: its records, not the other change's.
        assert_eq!(page.skipped_bytes, all.text.len() as u64);
        store.begin_step("c-1", 1, "apply");
        store.write("stdout", b"three\n");
        store.end_step();
        let next = store.read(&query(Some("c-1"), Some(page.cursor))).unwrap();
        assert!(next.text.ends_with("\tstdout\tthree\n"), "{}", next.text);
        assert_eq!(next.text.lines().count(), 1, "{}", next.text);
        assert_eq!(next.skipped_bytes, 0);
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

    fn sizes(dir: &Path) -> Vec<(String, u64, u32)> {
        let mut out: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| {
                let m = e.metadata().unwrap();
                let name = e.file_name().into_string().unwrap();
                (name, m.len(), m.permissions().mode() & 0o777)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn every_source_together_stays_within_the_budget_oldest_dropped_first() {
        let dir = tempfile::tempdir().unwrap();
        let budget = LogBudget {
            max_bytes: 256 * 1024,
            reserve_bytes: 0,
        };
        let store = LogStore::open_with(dir.path(), budget).unwrap();
        assert!(store.accepts_service("auto-shop-prod-web"));
        store.service_line("auto-shop-prod-web", "1", "1", b"the service's first line");
        let line = [b'x'; 99];
        store.begin_step("c-1", 0, "apply");
        for i in 0..20_000 {
            store.write("stdout", &line);
            store.write("stdout", format!(" {i}\n").as_bytes());
        }
        store.end_step();
        let files = sizes(dir.path());
        let total: u64 = files.iter().map(|f| f.1).sum();
        assert!(total <= budget.max_bytes, "{total}: {files:?}");
        assert!(total > budget.max_bytes / 2, "{total}: {files:?}");
        assert!(files.iter().all(|f| f.2 == 0o600), "{files:?}");
        // The service's old line went first; the step's newest lines stay.
        assert!(
            files.iter().all(|f| !f.0.starts_with("service-")),
            "{files:?}"
        );
        let mut q = query(Some("c-1"), None);
        q.since_ms = Some(1);
        let page = store.read(&q).unwrap();
        assert!(page.beyond_retention.unwrap().contains("256 KiB of logs"));
        let mut text = String::new();
        let mut cursor = None;
        loop {
            let p = store.read(&query(Some("c-1"), cursor)).unwrap();
            text.push_str(&p.text);
            cursor = Some(p.cursor);
            if !p.more {
                break;
            }
        }
        assert!(text.ends_with(" 19999\n"), "the newest output is kept");
        // A reopened store counts what is on disk against the same budget.
        let again = LogStore::open_with(dir.path(), budget).unwrap();
        again.begin_step("c-2", 0, "apply");
        for _ in 0..5_000 {
            again.write("stdout", &line);
            again.write("stdout", b"\n");
        }
        again.end_step();
        let total: u64 = sizes(dir.path()).iter().map(|f| f.1).sum();
        assert!(total <= budget.max_bytes, "{total}");
    }

    #[test]
    fn logs_never_write_into_the_journal_s_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let budget = LogBudget {
            max_bytes: 1024 * 1024,
            // More than any disk has free.
            reserve_bytes: u64::MAX,
        };
        let store = LogStore::open_with(dir.path(), budget).unwrap();
        store.begin_step("c-1", 0, "apply");
        store.write("stdout", b"a line that has no room\n");
        store.end_step();
        assert_eq!(sizes(dir.path()), Vec::new(), "nothing written");
        assert_eq!(store.yield_space(), 0);
    }

    #[test]
    fn files_left_readable_by_an_older_plug_are_narrowed() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join(file_name("steps", 1));
        fs::write(&old, "1\tc-1\t0\tapply\tstdout\tsecret\n").unwrap();
        fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        store.begin_step("c-2", 0, "apply");
        store.write("stdout", b"new\n");
        store.end_step();
        assert!(sizes(dir.path()).iter().all(|f| f.2 == 0o600));
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

    /// Issue 19: a service deployed here that printed nothing yet reads
    /// as an empty page, and reads on from there once it prints; a name
    /// no replica here bears is still an error.
    #[test]
    fn a_quiet_service_is_an_empty_page_and_an_absent_one_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store = LogStore::open(dir.path()).unwrap();
        let mut q = query(None, None);
        q.source = LogSource::Service {
            name: "auto-shop-prod-web".into(),
        };
        assert!(store.read(&q).unwrap_err().contains("no replica of it"));
        // What the collector does for each replica it finds.
        assert!(store.accepts_service("auto-shop-prod-web"));
        let page = store.read(&q).unwrap();
        assert_eq!((page.text.as_str(), page.more), ("", false));
        store.service_line("auto-shop-prod-web", "1", "1", b"listening");
        q.cursor = Some(page.cursor);
        let next = store.read(&q).unwrap();
        assert!(next.text.ends_with("\tlistening\n"), "{:?}", next.text);
    }
}
