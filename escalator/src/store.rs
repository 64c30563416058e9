//! The data dir: an exclusive lock, and one LevelDB per database under `db/`.

use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;

use crate::engine::{Engine, LevelDbEngine, LevelDbOptions};
use crate::error::EscalatorError;
use vigie_wire::escalator::{Fault, FaultKind};
use vigie_wire::limits::MAX_DB_NAME;

pub struct Store {
    root: PathBuf,
    dbs: HashMap<String, LevelDbEngine>,
    opts: LevelDbOptions,
    _lock: Flock<File>,
}

/// Database names become directory names: keep them boring.
pub fn check_name(name: &str) -> Result<(), Fault> {
    let ok = !name.is_empty()
        && name.len() <= MAX_DB_NAME
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Fault::new(
            FaultKind::InvalidName,
            format!("database name {name:?} must be 1-{MAX_DB_NAME} of [A-Za-z0-9._-], not starting with '.'"),
        ))
    }
}

/// Creates `dir` and its missing parents, fsyncing the parent of each
/// directory created so that its entry survives power loss.
fn create_durably(dir: &Path) -> Result<(), EscalatorError> {
    let mut missing = Vec::new();
    let mut d = dir;
    while !d.exists() {
        missing.push(d);
        match d.parent() {
            Some(p) if !p.as_os_str().is_empty() => d = p,
            _ => break,
        }
    }
    fs::create_dir_all(dir).map_err(|e| EscalatorError::io(dir, e))?;
    for created in missing.iter().rev() {
        let parent = match created.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(parent)
            .and_then(|f| f.sync_all())
            .map_err(|e| EscalatorError::io(parent, e))?;
    }
    Ok(())
}

impl Store {
    /// Locks `root` (creating it) and opens every database in it.
    pub fn open(root: &Path, opts: LevelDbOptions) -> Result<Self, EscalatorError> {
        let dbdir = root.join("db");
        create_durably(&dbdir)?;
        let lock = crate::lock::lock_dir(root, "escalator.lock")?;
        let mut store = Self {
            root: root.to_path_buf(),
            dbs: HashMap::new(),
            opts,
            _lock: lock,
        };
        for entry in fs::read_dir(&dbdir).map_err(|e| EscalatorError::io(&dbdir, e))? {
            let entry = entry.map_err(|e| EscalatorError::io(&dbdir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if check_name(&name).is_ok() && entry.path().is_dir() {
                let engine = LevelDbEngine::open(&entry.path(), opts)?;
                store.dbs.insert(name, engine);
            }
        }
        Ok(store)
    }

    pub fn len(&self) -> usize {
        self.dbs.len()
    }

    pub fn names(&self) -> Vec<String> {
        let mut v: Vec<_> = self.dbs.keys().cloned().collect();
        v.sort();
        v
    }

    pub fn get_mut(&mut self, name: &str) -> Result<&mut LevelDbEngine, Fault> {
        self.dbs.get_mut(name).ok_or_else(|| {
            Fault::new(
                FaultKind::UnknownDatabase,
                format!("no database named {name:?}"),
            )
        })
    }

    /// Creates a database; `exist_ok` makes an existing one a success.
    pub fn create(&mut self, name: &str, exist_ok: bool) -> Result<(), Fault> {
        check_name(name)?;
        if self.dbs.contains_key(name) {
            return if exist_ok {
                Ok(())
            } else {
                Err(Fault::new(
                    FaultKind::DatabaseExists,
                    format!("database {name:?} exists"),
                ))
            };
        }
        let dir = self.root.join("db").join(name);
        let engine = LevelDbEngine::open(&dir, self.opts)
            .map_err(|e| Fault::new(FaultKind::Storage, e.to_string()))?;
        // The new directory entry must survive power loss like the data in it.
        let parent = self.root.join("db");
        File::open(&parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| {
                Fault::new(
                    FaultKind::Storage,
                    format!("sync {}: {e}", parent.display()),
                )
            })?;
        self.dbs.insert(name.to_owned(), engine);
        Ok(())
    }

    /// Syncs and closes every database.
    pub fn close(self) -> Result<(), EscalatorError> {
        for (_, engine) in self.dbs {
            engine.close()?;
        }
        Ok(())
    }

    pub fn flush(&mut self, name: &str) -> Result<(), EscalatorError> {
        if let Some(e) = self.dbs.get_mut(name) {
            e.flush()?;
        }
        Ok(())
    }

    pub fn sync(&mut self, name: &str) -> Result<u32, EscalatorError> {
        match self.dbs.get_mut(name) {
            Some(e) => Ok(e.sync()?),
            None => Ok(0),
        }
    }
}
