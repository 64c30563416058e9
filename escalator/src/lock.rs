//! An exclusive lock on a data dir: one process per dir.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;

use nix::fcntl::{Flock, FlockArg};

use crate::error::EscalatorError;

/// Takes an exclusive lock on `dir/name` (created if missing) and writes
/// our pid in it; fails naming the holder's pid when another process has it.
/// The lock lives as long as the returned value (and dies with the process).
pub fn lock_dir(root: &Path, name: &str) -> Result<Flock<File>, EscalatorError> {
    let path = root.join(name);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| EscalatorError::io(&path, e))?;
    let mut previous = String::new();
    // Best effort: the pid is only used in the error message.
    let _ = file.read_to_string(&mut previous);
    let mut lock =
        Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| EscalatorError::Locked {
            dir: root.to_path_buf(),
            pid: previous.trim().to_owned(),
            lock: name.to_owned(),
        })?;
    let pid = std::process::id().to_string();
    lock.set_len(0)
        .and_then(|_| lock.rewind())
        .and_then(|_| lock.write_all(pid.as_bytes()))
        .map_err(|e| EscalatorError::io(&path, e))?;
    Ok(lock)
}
