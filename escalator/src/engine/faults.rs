//! Injected I/O faults, for crash-point testing.
//!
//! [`Faults`] counts the write(2) and fdatasync calls of a database (through
//! [`super::sync_env::SyncEnv`]) and, at the N-th one, fails it (ENOSPC),
//! makes it short (half written, then the rest on the next call), or "kills"
//! the process: the call writes half its bytes and every later mutating call
//! fails, so that the disk holds exactly what a SIGKILL at that point would
//! have left. Production databases have no `Faults`.

use std::cell::Cell;
use std::rc::Rc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultMode {
    /// The call fails with ENOSPC, nothing written.
    Fail,
    /// The call writes half its bytes and says so.
    Short,
    /// The call writes half its bytes, then all I/O stops.
    Kill,
}

impl FaultMode {
    pub const ALL: [FaultMode; 3] = [FaultMode::Fail, FaultMode::Short, FaultMode::Kill];
}

/// A fault at the `at`-th write or sync (from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultPoint {
    pub at: u64,
    pub mode: FaultMode,
}

/// What one write call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFate {
    Whole,
    /// Write this many bytes and report them.
    Short(usize),
    /// Write nothing, fail with ENOSPC.
    NoSpace,
    /// Write this many bytes, then die.
    Kill(usize),
    /// Dead already.
    Dead,
}

#[derive(Debug, Default)]
pub struct Faults {
    point: Option<FaultPoint>,
    ops: Cell<u64>,
    fired: Cell<bool>,
    dead: Cell<bool>,
}

impl Faults {
    /// Counts calls, injects nothing.
    pub fn counting() -> Rc<Self> {
        Rc::default()
    }

    pub fn at(point: FaultPoint) -> Rc<Self> {
        Rc::new(Self {
            point: Some(point),
            ..Self::default()
        })
    }

    /// Write and sync calls so far.
    pub fn ops(&self) -> u64 {
        self.ops.get()
    }

    pub fn fired(&self) -> bool {
        self.fired.get()
    }

    pub fn dead(&self) -> bool {
        self.dead.get()
    }

    fn next(&self) -> Option<FaultMode> {
        let n = self.ops.get() + 1;
        self.ops.set(n);
        let p = self.point.filter(|p| p.at == n)?;
        self.fired.set(true);
        Some(p.mode)
    }

    pub fn on_write(&self, len: usize) -> WriteFate {
        if self.dead.get() {
            return WriteFate::Dead;
        }
        match self.next() {
            None => WriteFate::Whole,
            Some(FaultMode::Fail) => WriteFate::NoSpace,
            Some(FaultMode::Short) if len > 1 => WriteFate::Short(len / 2),
            Some(FaultMode::Short) => WriteFate::Whole,
            Some(FaultMode::Kill) => {
                self.dead.set(true);
                WriteFate::Kill(len / 2)
            }
        }
    }

    /// Whether a sync call may proceed.
    pub fn on_sync(&self) -> std::io::Result<()> {
        if self.dead.get() {
            return Err(killed());
        }
        match self.next() {
            None | Some(FaultMode::Short) => Ok(()),
            Some(FaultMode::Fail) => Err(std::io::Error::from_raw_os_error(nix::libc::EIO)),
            Some(FaultMode::Kill) => {
                self.dead.set(true);
                Err(killed())
            }
        }
    }

    /// Whether other mutating calls (create, rename, delete) may proceed.
    pub fn alive(&self) -> std::io::Result<()> {
        if self.dead.get() {
            Err(killed())
        } else {
            Ok(())
        }
    }
}

pub fn killed() -> std::io::Error {
    std::io::Error::other("injected kill: all I/O stopped")
}

pub fn no_space() -> std::io::Error {
    std::io::Error::from_raw_os_error(nix::libc::ENOSPC)
}
