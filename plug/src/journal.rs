//! The plug's journal: what it accepted and reported, so that after a crash
//! it knows which steps may have touched the host and which reports the
//! referee may not have. Behind a small trait: a file (fsync'ed) for real
//! hosts, memory for simulated fleets.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{ChangeId, Report};

use crate::error::PlugError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalRecord {
    /// The journal's first record: its incarnation (see `Report`).
    Incarnation { id: u64 },
    /// An order accepted: written before its first report.
    Order { change: ChangeId, spec: ChangeSpec },
    /// A report, written before it is sent.
    Report(Report),
    /// The referee acknowledged every report up to `upto`.
    Acked { upto: u64 },
    /// What a compaction folded: every order of the referee's sequence
    /// `below` or lower, and the `changes` named, were accepted and are
    /// final (an order for one again is a replay); reports go on from
    /// `next_seq`.
    Seen {
        below: u64,
        changes: Vec<ChangeId>,
        next_seq: u64,
    },
    /// An order accepted, with its place in the referee's sequence (what
    /// a compaction folds it into): written before its first report.
    OrderAt {
        change: ChangeId,
        seq: u64,
        spec: ChangeSpec,
    },
}

pub trait Journal: Send {
    /// Appends a record; `durable` ones are on stable storage on return.
    fn append(&mut self, rec: &JournalRecord, durable: bool) -> Result<(), PlugError>;
    /// Every record appended so far (a torn last record is dropped).
    fn load(&mut self) -> Result<Vec<JournalRecord>, PlugError>;
    /// Replaces every record with `records`, atomically and durably (a
    /// crash leaves the old journal or the new one); false when this
    /// journal is not compacted.
    fn rewrite(&mut self, records: &[JournalRecord]) -> Result<bool, PlugError> {
        let _ = records;
        Ok(false)
    }
}

#[derive(Debug, Default)]
pub struct MemJournal {
    records: Vec<JournalRecord>,
}

impl Journal for MemJournal {
    fn append(&mut self, rec: &JournalRecord, _durable: bool) -> Result<(), PlugError> {
        self.records.push(rec.clone());
        Ok(())
    }

    fn load(&mut self) -> Result<Vec<JournalRecord>, PlugError> {
        Ok(self.records.clone())
    }

    fn rewrite(&mut self, records: &[JournalRecord]) -> Result<bool, PlugError> {
        self.records = records.to_vec();
        Ok(true)
    }
}

/// The first bytes of a journal file (format 2).
const MAGIC: &[u8; 8] = b"VGJOURN2";
/// A record's header: the frame's length (`u32` LE), the CRC-32C of those
/// four bytes, the CRC-32C of the frame.
const HEADER: usize = 12;

/// A journal file: [`MAGIC`], then records, each a header and a versioned
/// wire frame. The length has its own checksum so that a damaged length is
/// told from a record cut short by a crash: a record that ends the file
/// cut short (or followed by zeros only) is a torn write and is cut; a
/// damaged record with records after it is an error — never silently
/// dropped with everything after it. A file of the first format (length
/// and frame only) is rewritten in this one when opened.
///
/// An append that fails (a full disk, an I/O error) may leave part of its
/// record behind: the file is cut back to the end of the last whole record
/// before anything else is appended, so a failed write never leaves
/// garbage between records.
pub struct FileJournal {
    path: PathBuf,
    file: File,
    /// Where the last whole record ends: the next one goes there.
    end: u64,
    /// A failed append may have left bytes past `end`.
    tail_dirty: bool,
    /// A rewrite renamed a new file over `path` but could not open it:
    /// `file` is the old one, reopened before anything else.
    stale: bool,
}

impl FileJournal {
    pub fn open(path: &Path) -> Result<Self, PlugError> {
        let err = |source| PlugError::Journal {
            path: path.to_path_buf(),
            source,
        };
        let existed = path.exists();
        // It holds whole change specs (file contents): its user's only,
        // whatever the umask (a plug works under the host's).
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(err)?;
        let mode = file.metadata().map_err(err)?.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            file.set_permissions(Permissions::from_mode(0o600))
                .map_err(err)?;
        }
        if !existed {
            // The new directory entry must survive a power loss too.
            if let Some(dir) = path.parent() {
                File::open(dir).and_then(|d| d.sync_all()).map_err(err)?;
            }
        }
        let mut j = Self {
            path: path.to_path_buf(),
            file,
            end: 0,
            // Until `load` checked it, the tail may be torn.
            tail_dirty: true,
            stale: false,
        };
        let mut start = [0u8; MAGIC.len()];
        let len = j.file.metadata().map_err(err)?.len();
        let head = usize::try_from(len).map_or(MAGIC.len(), |l| l.min(MAGIC.len()));
        File::open(path)
            .and_then(|mut f| f.read_exact(&mut start[..head]))
            .map_err(err)?;
        if MAGIC.starts_with(&start[..head]) && head < MAGIC.len() {
            // New, or its creation was cut short.
            j.file.set_len(0).map_err(err)?;
            j.file.write_all(MAGIC).map_err(err)?;
            j.file.sync_data().map_err(err)?;
        } else if start != *MAGIC {
            // The first format starts with a length then a wire envelope;
            // anything else (a damaged header) is not guessed at.
            let legacy = len < 6 || start[4..6] == *b"VG";
            if !legacy {
                return Err(j.corrupt(0, "not a journal (its header is damaged)"));
            }
            j.migrate()?;
        }
        j.end = j.file.metadata().map_err(err)?.len();
        Ok(j)
    }

    /// Rewrites a journal of the first format in this one, atomically: a
    /// new file beside it, synced, renamed over it.
    fn migrate(&mut self) -> Result<(), PlugError> {
        let mut bytes = Vec::new();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| self.err(e))?;
        let mut records = Vec::new();
        let mut at = 0;
        while let Some(len) = bytes.get(at..at + 4) {
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let Some(frame) = bytes.get(at + 4..at + 4 + len) else {
                break;
            };
            let rec = vigie_wire::decode::<JournalRecord>(frame)
                .map_err(|e| self.corrupt(at, &format!("unreadable (first format): {e}")))?;
            records.push(rec);
            at += 4 + len;
        }
        self.replace_with(&records, "migrating")?;
        tracing::info!(event = "journal_migrated", path = %self.path.display(), records = records.len());
        Ok(())
    }

    /// Writes `records` to a new file beside the journal, synced, then
    /// renames it over the journal (and syncs the directory): the old
    /// journal or the new one, whatever the crash.
    fn replace_with(&mut self, records: &[JournalRecord], ext: &str) -> Result<(), PlugError> {
        let tmp = self.path.with_extension(ext);
        let mut out = MAGIC.to_vec();
        for rec in records {
            out.extend_from_slice(&record_bytes(rec)?);
        }
        let write = || -> std::io::Result<()> {
            let mut f = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&out)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)
        };
        write().map_err(|e| self.err(e))?;
        // From here the file is the new one, whatever fails next.
        self.stale = true;
        self.reopen()?;
        self.end = out.len() as u64;
        Ok(())
    }

    /// Opens the journal's file again (after a rewrite), its directory
    /// entry synced first.
    fn reopen(&mut self) -> Result<(), PlugError> {
        let open = || -> std::io::Result<File> {
            if let Some(dir) = self.path.parent() {
                File::open(dir)?.sync_all()?;
            }
            OpenOptions::new().read(true).append(true).open(&self.path)
        };
        self.file = open().map_err(|e| self.err(e))?;
        self.end = self.file.metadata().map_err(|e| self.err(e))?.len();
        self.stale = false;
        self.tail_dirty = false;
        Ok(())
    }

    fn corrupt(&self, at: usize, what: &str) -> PlugError {
        self.err(std::io::Error::other(format!(
            "record at byte {at} is {what}"
        )))
    }

    /// Cuts what a failed append (or a crash) left past the last whole
    /// record.
    fn cut_tail(&mut self) -> Result<(), PlugError> {
        if self.file.metadata().map_err(|e| self.err(e))?.len() != self.end {
            self.file.set_len(self.end).map_err(|e| self.err(e))?;
            self.file.sync_data().map_err(|e| self.err(e))?;
        }
        self.tail_dirty = false;
        Ok(())
    }

    fn err(&self, source: std::io::Error) -> PlugError {
        PlugError::Journal {
            path: self.path.clone(),
            source,
        }
    }
}

/// A record as the file holds it: header, then the frame.
fn record_bytes(rec: &JournalRecord) -> Result<Vec<u8>, PlugError> {
    let frame = vigie_wire::encode(rec)?;
    let len = u32::try_from(frame.len()).unwrap_or(u32::MAX).to_le_bytes();
    let mut buf = Vec::with_capacity(frame.len() + HEADER);
    buf.extend_from_slice(&len);
    buf.extend_from_slice(&crc32c::crc32c(&len).to_le_bytes());
    buf.extend_from_slice(&crc32c::crc32c(&frame).to_le_bytes());
    buf.extend_from_slice(&frame);
    Ok(buf)
}

impl Journal for FileJournal {
    fn append(&mut self, rec: &JournalRecord, durable: bool) -> Result<(), PlugError> {
        let buf = record_bytes(rec)?;
        if self.stale {
            self.reopen()?;
        }
        if self.tail_dirty {
            self.cut_tail()?;
        }
        let written = self.file.write_all(&buf).and_then(|()| {
            if durable {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        if let Err(e) = written {
            // Part of the record may be in the file (and after a failed
            // fsync nothing says what is on disk): cut it now if we can,
            // before the next append otherwise.
            self.tail_dirty = true;
            let _ = self.cut_tail();
            return Err(self.err(e));
        }
        self.end += buf.len() as u64;
        Ok(())
    }

    fn rewrite(&mut self, records: &[JournalRecord]) -> Result<bool, PlugError> {
        self.replace_with(records, "compacting")?;
        Ok(true)
    }

    fn load(&mut self) -> Result<Vec<JournalRecord>, PlugError> {
        if self.stale {
            self.reopen()?;
        }
        let mut bytes = Vec::new();
        File::open(&self.path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| self.err(e))?;
        if !bytes.starts_with(MAGIC) {
            return Err(self.corrupt(0, "not a journal (no header)"));
        }
        let zeros = |from: usize| bytes.get(from..).is_none_or(|b| b.iter().all(|&x| x == 0));
        let mut out = Vec::new();
        let mut at = MAGIC.len();
        while at < bytes.len() {
            let Some(h) = bytes.get(at..at + HEADER) else {
                break; // a header cut short
            };
            let word = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
            if crc32c::crc32c(&h[..4]) != word(4) {
                if zeros(at + HEADER) {
                    // A header cut short, the rest of the tail filled
                    // with zeros by the filesystem.
                    break;
                }
                return Err(self.corrupt(at, "damaged (its length fails its checksum)"));
            }
            let end = at + HEADER + word(0) as usize;
            let Some(frame) = bytes.get(at + HEADER..end) else {
                break; // the frame cut short
            };
            if crc32c::crc32c(frame) != word(8) {
                if zeros(end) {
                    break; // the last record, damaged by the crash
                }
                return Err(self.corrupt(at, "damaged (fails its checksum) and records follow it"));
            }
            // A whole record that does not decode is not a torn write.
            let rec = vigie_wire::decode::<JournalRecord>(frame)
                .map_err(|e| self.corrupt(at, &format!("unreadable: {e}")))?;
            out.push(rec);
            at = end;
        }
        if at < bytes.len() {
            // The last record was cut short by a crash: drop it so appends
            // follow the last whole one.
            tracing::warn!(event = "journal_truncated", path = %self.path.display(), at, len = bytes.len());
        }
        self.end = at as u64;
        self.cut_tail()?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_journal_survives_reopen_and_drops_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let a = JournalRecord::Acked { upto: 1 };
        let b = JournalRecord::Acked { upto: 2 };
        {
            let mut j = FileJournal::open(&path).unwrap();
            j.append(&a, true).unwrap();
            j.append(&b, true).unwrap();
        }
        // Tear the last record short.
        let len = std::fs::metadata(&path).unwrap().len();
        OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 3)
            .unwrap();
        let mut j = FileJournal::open(&path).unwrap();
        assert_eq!(j.load().unwrap(), vec![a.clone()]);
        let c = JournalRecord::Acked { upto: 3 };
        j.append(&c, true).unwrap();
        assert_eq!(
            FileJournal::open(&path).unwrap().load().unwrap(),
            vec![a, c]
        );
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;

    #[test]
    fn a_garbled_whole_record_refuses_to_load_instead_of_cutting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        {
            let mut j = FileJournal::open(&path).unwrap();
            j.append(&JournalRecord::Acked { upto: 1 }, true).unwrap();
            j.append(&JournalRecord::Acked { upto: 2 }, true).unwrap();
        }
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[MAGIC.len() + HEADER + 1] ^= 0xff; // inside the first record's envelope
        std::fs::write(&path, &bytes).unwrap();
        assert!(FileJournal::open(&path).unwrap().load().is_err());
        assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing cut");
    }
}

#[cfg(test)]
mod mode_tests {
    use super::*;

    #[test]
    fn the_journal_is_its_users_only_new_or_existing() {
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let new = dir.path().join("new");
        FileJournal::open(&new).unwrap();
        assert_eq!(mode(&new), 0o600);
        let old = dir.path().join("old");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, Permissions::from_mode(0o644)).unwrap();
        FileJournal::open(&old).unwrap();
        assert_eq!(mode(&old), 0o600);
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn a_journal_of_the_first_format_is_rewritten_in_this_one_with_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal");
        let recs = [
            JournalRecord::Incarnation { id: 2 },
            JournalRecord::Acked { upto: 5 },
        ];
        let mut old = Vec::new();
        for r in &recs {
            let frame = vigie_wire::encode(r).unwrap();
            old.extend_from_slice(&(frame.len() as u32).to_le_bytes());
            old.extend_from_slice(&frame);
        }
        old.extend_from_slice(&[9, 0]); // a torn tail
        std::fs::write(&path, &old).unwrap();
        let mut j = FileJournal::open(&path).unwrap();
        assert_eq!(j.load().unwrap(), recs);
        assert!(std::fs::read(&path).unwrap().starts_with(MAGIC));
        let more = JournalRecord::Acked { upto: 6 };
        j.append(&more, true).unwrap();
        let mut again = FileJournal::open(&path).unwrap();
        assert_eq!(
            again.load().unwrap(),
            [recs[0].clone(), recs[1].clone(), more]
        );
    }
}
