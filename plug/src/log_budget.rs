//! How much disk the host's log store may take. Its files share the
//! state dir's filesystem with the journal, and an app prints what it
//! likes: the store has a budget of its own (`max_bytes`, every source
//! together, the oldest file dropped first past it) and never writes into
//! the free space kept for the journal (`reserve_bytes`, checked with
//! `statvfs` of the state dir). Both default to a quarter of that
//! filesystem at most, so a small disk keeps half of itself for the
//! journal, the stash and the host's own files.

use std::fs;
use std::path::Path;
use std::time::SystemTime;

const MIB: u64 = 1024 * 1024;
/// The store's default budget, on a filesystem of 256 MiB or more.
pub const DEFAULT_MAX_BYTES: u64 = 64 * MIB;
/// The default free space kept for the journal, on a filesystem of 64 MiB
/// or more.
pub const DEFAULT_RESERVE_BYTES: u64 = 16 * MIB;
/// The smallest budget: a few of the longest records.
pub const MIN_MAX_BYTES: u64 = 64 * 1024;
/// Free space is asked again after at most this much was written, so
/// what others write meanwhile (the journal, the app) is seen soon.
pub const CHECK_EVERY: u64 = 256 * 1024;
/// A source's file is never rotated below this size.
const MIN_ROTATE_BYTES: u64 = 32 * 1024;
/// A source's file is rotated past this size at most (an eighth of the
/// budget on a small one, see `LogBudget::rotate_bytes`).
pub const ROTATE_BYTES: u64 = 1024 * 1024;
/// Files kept per source (the one being written included).
pub const KEEP_FILES: u64 = 8;

/// The store's limits (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBudget {
    /// The most its files hold, every source together.
    pub max_bytes: u64,
    /// Free space on the filesystem the store never writes into.
    pub reserve_bytes: u64,
}

impl LogBudget {
    /// The defaults for a filesystem of `fs_bytes`: each at most a quarter
    /// of it. A value given (the setup's, in MiB) wins.
    pub fn sized(fs_bytes: u64, max_bytes: Option<u64>, reserve_bytes: Option<u64>) -> Self {
        let quarter = fs_bytes / 4;
        Self {
            max_bytes: max_bytes
                .unwrap_or(DEFAULT_MAX_BYTES.min(quarter))
                .max(MIN_MAX_BYTES),
            reserve_bytes: reserve_bytes.unwrap_or(DEFAULT_RESERVE_BYTES.min(quarter)),
        }
    }

    /// The defaults (or the values given) for the filesystem holding `dir`.
    pub fn for_dir(dir: &Path, max_bytes: Option<u64>, reserve_bytes: Option<u64>) -> Self {
        let fs_bytes = rustix::fs::statvfs(dir).map_or(u64::MAX, |s| s.f_blocks * s.f_frsize);
        Self::sized(fs_bytes, max_bytes, reserve_bytes)
    }

    /// Where a source's file is rotated: an eighth of the budget (so a
    /// source keeps several files and drops the oldest in small steps), at
    /// most `ROTATE_BYTES`.
    pub fn rotate_bytes(&self) -> u64 {
        (self.max_bytes / KEEP_FILES).clamp(MIN_ROTATE_BYTES, ROTATE_BYTES)
    }
}

/// Free bytes for an unprivileged writer on the filesystem holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

/// One file of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub source: String,
    pub generation: u64,
    pub len: u64,
    /// Its last write.
    pub modified: SystemTime,
}

/// `SOURCE.GENERATION.log` read back.
pub fn parse_name(name: &str) -> Option<(String, u64)> {
    let stem = name.strip_suffix(".log")?;
    let (source, generation) = stem.rsplit_once('.')?;
    Some((source.to_owned(), generation.parse().ok()?))
}

/// Every file of the store in `dir`.
pub fn files(dir: &Path) -> Vec<LogFile> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let (source, generation) = parse_name(e.file_name().to_str()?)?;
            let meta = e.metadata().ok().filter(fs::Metadata::is_file)?;
            Some(LogFile {
                source,
                generation,
                len: meta.len(),
                modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            })
        })
        .collect()
}

/// The file to drop first: the one written to least recently (a source's
/// older generations before its newer ones).
pub fn oldest(files: &[LogFile]) -> Option<&LogFile> {
    files
        .iter()
        .min_by(|a, b| (a.modified, a.generation).cmp(&(b.modified, b.generation)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn defaults_take_at_most_a_quarter_of_a_small_disk() {
        let big = LogBudget::sized(100 * 1024 * MIB, None, None);
        assert_eq!(big.max_bytes, DEFAULT_MAX_BYTES);
        assert_eq!(big.reserve_bytes, DEFAULT_RESERVE_BYTES);
        assert_eq!(big.rotate_bytes(), ROTATE_BYTES);
        let small = LogBudget::sized(4 * MIB, None, None);
        assert_eq!(small.max_bytes, MIB);
        assert_eq!(small.reserve_bytes, MIB);
        assert_eq!(small.rotate_bytes(), MIB / 8);
        let set = LogBudget::sized(4 * MIB, Some(10), Some(2 * MIB));
        assert_eq!(set.max_bytes, MIN_MAX_BYTES, "never below a few records");
        assert_eq!(set.reserve_bytes, 2 * MIB);
    }

    #[test]
    fn the_least_recently_written_file_goes_first() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let f = |source: &str, generation, secs| LogFile {
            source: source.into(),
            generation,
            len: 1,
            modified: t + Duration::from_secs(secs),
        };
        let files = [
            f("steps", 3, 50),
            f("service-auto-a", 7, 20),
            f("steps", 2, 20),
        ];
        let first = oldest(&files).map(|f| (f.source.as_str(), f.generation));
        assert_eq!(first, Some(("steps", 2)));
        assert_eq!(
            parse_name("service-auto-a-b.000000000012.log"),
            Some(("service-auto-a-b".into(), 12))
        );
        assert_eq!(parse_name("offsets"), None);
    }
}
