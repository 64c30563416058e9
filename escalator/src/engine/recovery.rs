//! Makes a database directory safe for rusty-leveldb to open: every log is
//! read strictly first ([`logfile::scan`]). A torn tail is cut at the last
//! complete record and the file fsynced, so that nothing is ever appended
//! after garbage; corruption that is not a tail refuses the open, naming the
//! file and offset; [`repair`] salvages the intact records of such a file.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::logfile::{self, LogKind, Verdict};
use super::EngineError;

/// A torn tail that was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TailCut {
    pub file: PathBuf,
    pub kept: u64,
    pub dropped: u64,
    pub reason: String,
}

/// What a repair did to one damaged file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRepair {
    pub file: PathBuf,
    /// Where the damaged original was kept.
    pub original: PathBuf,
    pub records_kept: usize,
    /// The bad spots skipped: offset and reason.
    pub skipped: Vec<(u64, String)>,
}

fn io(path: &Path, source: std::io::Error) -> EngineError {
    EngineError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The logs rusty-leveldb will read: every `NNNNNN.log`, and the MANIFEST
/// that CURRENT names.
fn logs_of(dir: &Path) -> Result<Vec<(PathBuf, LogKind)>, EngineError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name.strip_suffix(".log") {
            if !num.is_empty() && num.bytes().all(|b| b.is_ascii_digit()) {
                out.push((entry.path(), LogKind::WriteAhead));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    if let Ok(current) = fs::read_to_string(dir.join("CURRENT")) {
        let manifest = dir.join(current.trim_end());
        if current.starts_with("MANIFEST-") && manifest.is_file() {
            out.push((manifest, LogKind::Manifest));
        }
    }
    Ok(out)
}

fn cut(path: &Path, keep: u64) -> Result<(), EngineError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io(path, e))?;
    f.set_len(keep).map_err(|e| io(path, e))?;
    f.sync_all().map_err(|e| io(path, e))
}

pub fn sync_dir(dir: &Path) -> Result<(), EngineError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

/// Checks every log of `dir`: cuts torn tails (logged as `log_tail_cut`),
/// refuses corruption. Returns the tails cut.
pub fn check(dir: &Path) -> Result<Vec<TailCut>, EngineError> {
    let mut cuts = Vec::new();
    for (path, kind) in logs_of(dir)? {
        let data = fs::read(&path).map_err(|e| io(&path, e))?;
        match logfile::scan(&data, kind).verdict {
            Verdict::Clean => {}
            Verdict::TornTail { keep, reason } => {
                cut(&path, keep)?;
                let dropped = data.len() as u64 - keep;
                // The bytes cut were never acknowledged: a reply waits for
                // the sync of the complete record.
                tracing::warn!(
                    event = "log_tail_cut",
                    file = %path.display(),
                    kept = keep,
                    dropped,
                    reason = %reason,
                    "torn tail of an unacknowledged write cut at the last complete record"
                );
                cuts.push(TailCut {
                    file: path,
                    kept: keep,
                    dropped,
                    reason,
                });
            }
            Verdict::Corrupt { offset, reason } => {
                return Err(EngineError::Corrupt {
                    file: path.display().to_string(),
                    offset,
                    reason,
                })
            }
        }
    }
    Ok(cuts)
}

/// Rewrites every damaged log of `dir` with its intact records, keeping
/// each original beside it as `NAME.corrupt`; cuts torn tails.
pub fn repair(dir: &Path) -> Result<(Vec<FileRepair>, Vec<TailCut>), EngineError> {
    let mut repairs = Vec::new();
    for (path, kind) in logs_of(dir)? {
        let data = fs::read(&path).map_err(|e| io(&path, e))?;
        if !matches!(logfile::scan(&data, kind).verdict, Verdict::Corrupt { .. }) {
            continue;
        }
        let salvage = logfile::salvage(&data, kind);
        let records: Vec<Vec<u8>> = salvage.records.iter().map(|r| r.data.clone()).collect();
        let fresh = logfile::encode(&records);
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!("{name}.repair"));
        let original = path.with_file_name(format!("{name}.corrupt"));
        let mut f = File::create(&tmp).map_err(|e| io(&tmp, e))?;
        f.write_all(&fresh).map_err(|e| io(&tmp, e))?;
        f.sync_all().map_err(|e| io(&tmp, e))?;
        fs::rename(&path, &original).map_err(|e| io(&path, e))?;
        fs::rename(&tmp, &path).map_err(|e| io(&tmp, e))?;
        sync_dir(dir)?;
        tracing::warn!(
            event = "log_repaired",
            file = %path.display(),
            original = %original.display(),
            records_kept = records.len(),
            skipped = ?salvage.skipped,
        );
        repairs.push(FileRepair {
            file: path,
            original,
            records_kept: records.len(),
            skipped: salvage.skipped,
        });
    }
    let cuts = check(dir)?;
    Ok((repairs, cuts))
}
