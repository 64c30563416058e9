//! A LevelDB environment that can make writes survive power loss.
//!
//! rusty-leveldb never calls fsync: its `sync` flag only flushes its buffer to
//! the page cache. This environment keeps a second handle on every file the
//! database writes, so that [`SyncState::sync`] can fdatasync exactly the
//! files written since the last sync (and the directory when entries were
//! created or removed). Before a file is deleted or renamed — the moments
//! LevelDB relies on earlier writes being on disk, e.g. a new table before
//! the log it replaces disappears — everything pending is synced first.
//!
//! Every write is made whole (a short write(2) is retried until done) or
//! fails. After any failed write or sync the environment is *poisoned*: it
//! refuses every later mutation, so that nothing rusty-leveldb still holds in
//! its buffers (or retries on drop) can land after the failure; the engine
//! then reopens the database from what is on disk.

use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use rusty_leveldb::env::{Env, FileLock, Logger, RandomAccess};
use rusty_leveldb::{PosixDiskEnv, Status, StatusCode};

use super::faults::{self, Faults, WriteFate};
use super::EngineError;

struct Tracked {
    path: PathBuf,
    file: File,
    dirty: Rc<Cell<bool>>,
}

#[derive(Default)]
struct Pending {
    files: Vec<Tracked>,
    dir_dirty: bool,
}

/// What the engine keeps to sync the files of one database.
#[derive(Clone)]
pub struct SyncState {
    dir: PathBuf,
    pending: Rc<RefCell<Pending>>,
    /// The first write or sync failure, after which nothing is written.
    poison: Rc<RefCell<Option<String>>>,
    faults: Option<Rc<Faults>>,
}

impl SyncState {
    /// Why writes stopped, if they did.
    pub fn poisoned(&self) -> Option<String> {
        self.poison.borrow().clone()
    }

    pub(super) fn poison(&self, why: &str) {
        self.poison
            .borrow_mut()
            .get_or_insert_with(|| why.to_owned());
    }

    fn check_alive(&self) -> std::io::Result<()> {
        if let Some(why) = self.poison.borrow().as_ref() {
            return Err(std::io::Error::other(format!(
                "writes stopped after an earlier failure: {why}"
            )));
        }
        self.faults.as_ref().map_or(Ok(()), |f| f.alive())
    }

    fn sync_file(&self, file: &File) -> std::io::Result<()> {
        self.check_alive()?;
        if let Some(f) = &self.faults {
            f.on_sync()?;
        }
        file.sync_data()
    }

    /// fdatasyncs every file written since the last call, then the directory
    /// if its entries changed. Returns the number of fsync calls made.
    pub fn sync(&self) -> Result<u32, EngineError> {
        let r = self.sync_pending();
        if let Err(e) = &r {
            self.poison(&e.to_string());
        }
        r
    }

    fn sync_pending(&self) -> Result<u32, EngineError> {
        let mut pending = self.pending.borrow_mut();
        let mut calls = 0;
        for t in &pending.files {
            if t.dirty.get() {
                self.sync_file(&t.file)
                    .map_err(|source| EngineError::Sync {
                        path: t.path.display().to_string(),
                        source,
                    })?;
                t.dirty.set(false);
                calls += 1;
            }
        }
        // A file whose writer was dropped and that is now clean needs no more tracking.
        pending
            .files
            .retain(|t| t.dirty.get() || Rc::strong_count(&t.dirty) > 1);
        if pending.dir_dirty {
            File::open(&self.dir)
                .and_then(|d| self.sync_file(&d))
                .map_err(|source| EngineError::Sync {
                    path: self.dir.display().to_string(),
                    source,
                })?;
            pending.dir_dirty = false;
            calls += 1;
        }
        Ok(calls)
    }
}

/// A writable file that marks itself dirty on every write and writes whole.
struct TrackedWriter {
    path: PathBuf,
    file: File,
    dirty: Rc<Cell<bool>>,
    state: SyncState,
}

impl TrackedWriter {
    /// One write(2) call, or the fault injected in its place.
    fn write_once(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let fate = self
            .state
            .faults
            .as_ref()
            .map_or(WriteFate::Whole, |f| f.on_write(buf.len()));
        match fate {
            WriteFate::Whole => self.file.write(buf),
            WriteFate::Short(n) => self.file.write(&buf[..n]),
            WriteFate::NoSpace => Err(faults::no_space()),
            WriteFate::Kill(n) => {
                self.file.write_all(&buf[..n])?;
                Err(faults::killed())
            }
            WriteFate::Dead => Err(faults::killed()),
        }
    }

    /// rusty-leveldb takes a short count for a whole write: retry until
    /// every byte is written, or fail.
    fn write_whole(&mut self, mut buf: &[u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            match self.write_once(buf) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Write for TrackedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.state.check_alive()?;
        self.dirty.set(true);
        match self.write_whole(buf) {
            Ok(()) => Ok(buf.len()),
            Err(e) => {
                // Part of `buf` may be in the file: nothing may follow it.
                self.state
                    .poison(&format!("write {}: {e}", self.path.display()));
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

pub struct SyncEnv {
    inner: PosixDiskEnv,
    state: SyncState,
}

impl SyncEnv {
    pub fn new(dir: &Path, faults: Option<Rc<Faults>>) -> (Self, SyncState) {
        let state = SyncState {
            dir: dir.to_path_buf(),
            pending: Rc::default(),
            poison: Rc::default(),
            faults,
        };
        let env = Self {
            inner: PosixDiskEnv::new(),
            state: state.clone(),
        };
        (env, state)
    }

    fn open_tracked(&self, p: &Path, append: bool) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.alive("open", p)?;
        let existed = p.exists();
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .append(append)
            .truncate(!append)
            .open(p)
            .map_err(|e| io_status("open", p, e))?;
        let handle = file.try_clone().map_err(|e| io_status("dup", p, e))?;
        let dirty = Rc::new(Cell::new(false));
        let mut pending = self.state.pending.borrow_mut();
        pending.dir_dirty |= !existed;
        pending.files.push(Tracked {
            path: p.to_path_buf(),
            file: handle,
            dirty: dirty.clone(),
        });
        Ok(Box::new(TrackedWriter {
            path: p.to_path_buf(),
            file,
            dirty,
            state: self.state.clone(),
        }))
    }

    fn alive(&self, op: &str, p: &Path) -> rusty_leveldb::Result<()> {
        self.state.check_alive().map_err(|e| io_status(op, p, e))
    }

    fn sync_before(&self, op: &str, p: &Path) -> rusty_leveldb::Result<()> {
        self.state
            .sync()
            .map(|_| ())
            .map_err(|e| Status::new(StatusCode::IOError, &format!("{op} {}: {e}", p.display())))
    }
}

fn io_status(op: &str, p: &Path, e: std::io::Error) -> Status {
    Status::new(StatusCode::IOError, &format!("{op} {}: {e}", p.display()))
}

impl Env for SyncEnv {
    fn open_sequential_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Read>> {
        self.inner.open_sequential_file(p)
    }
    fn open_random_access_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn RandomAccess>> {
        self.inner.open_random_access_file(p)
    }
    fn open_writable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        // The info log is best effort (its errors are ignored): it must
        // neither stop the database on a full disk nor be synced.
        if p.file_name().is_some_and(|n| n == "LOG") {
            return self.inner.open_writable_file(p);
        }
        self.open_tracked(p, false)
    }
    fn open_appendable_file(&self, p: &Path) -> rusty_leveldb::Result<Box<dyn Write>> {
        self.open_tracked(p, true)
    }
    fn exists(&self, p: &Path) -> rusty_leveldb::Result<bool> {
        self.inner.exists(p)
    }
    fn children(&self, p: &Path) -> rusty_leveldb::Result<Vec<PathBuf>> {
        self.inner.children(p)
    }
    fn size_of(&self, p: &Path) -> rusty_leveldb::Result<usize> {
        self.inner.size_of(p)
    }
    fn delete(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.alive("delete", p)?;
        self.sync_before("delete", p)?;
        self.inner.delete(p)?;
        self.state.pending.borrow_mut().dir_dirty = true;
        Ok(())
    }
    fn mkdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.inner.mkdir(p)
    }
    fn rmdir(&self, p: &Path) -> rusty_leveldb::Result<()> {
        self.inner.rmdir(p)
    }
    fn rename(&self, old: &Path, new: &Path) -> rusty_leveldb::Result<()> {
        // CURRENT is replaced by rename: its new content and the manifest it
        // names must be durable before, and the rename itself right after.
        self.alive("rename", old)?;
        self.sync_before("rename", old)?;
        self.inner.rename(old, new)?;
        self.state.pending.borrow_mut().dir_dirty = true;
        self.sync_before("rename", new)
    }
    fn lock(&self, p: &Path) -> rusty_leveldb::Result<FileLock> {
        self.inner.lock(p)
    }
    fn unlock(&self, l: FileLock) -> rusty_leveldb::Result<()> {
        self.inner.unlock(l)
    }
    fn new_logger(&self, p: &Path) -> rusty_leveldb::Result<Logger> {
        self.inner.new_logger(p)
    }
    fn micros(&self) -> u64 {
        self.inner.micros()
    }
    fn sleep_for(&self, micros: u32) {
        self.inner.sleep_for(micros)
    }
}
