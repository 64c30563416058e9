//! The data dir: private to the tower's user (0700), an exclusive lock,
//! and one LevelDB per database under `db/` — or, for an HA tower, every
//! database in etcd ([`EtcdStore`]).

use std::collections::HashMap;
use std::fs::{self, File};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::Flock;

use crate::engine::{LevelDbEngine, LevelDbOptions, RowCache, Staging, ROW_CACHE_BYTES};
use crate::error::EscalatorError;
use crate::etcd_store::EtcdStore;
use vigie_wire::escalator::{Fault, FaultKind};
use vigie_wire::limits::MAX_DB_NAME;

/// Where the databases live.
#[derive(Debug, Clone)]
pub enum Backend {
    LevelDb(LevelDbOptions),
    Etcd(EtcdStore),
}

pub struct Store {
    root: PathBuf,
    dbs: HashMap<String, Box<dyn Staging>>,
    backend: Backend,
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

/// Makes `dir` private to this user: creates it (and its missing parents)
/// with mode 0700, or narrows an existing one to 0700. Returns the previous
/// mode when it let anyone else in (the caller reports it): data at rest
/// holds file contents and keys in clear.
pub fn private_dir(dir: &Path) -> std::io::Result<Option<u32>> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode() & 0o7777;
    if mode & 0o077 == 0 {
        return Ok(None);
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(Some(mode))
}

/// `private_dir`, logging `data_dir_tightened` when it had to narrow it.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(was) = private_dir(dir)? {
        tracing::warn!(
            event = "data_dir_tightened",
            path = %dir.display(),
            was = format!("{was:o}"),
            now = "700"
        );
    }
    Ok(())
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
    /// Locks `root` (creating it, private) and opens every database in it.
    pub fn open(root: &Path, backend: Backend) -> Result<Self, EscalatorError> {
        // Created with its parents' entries synced, then made private.
        create_durably(root)?;
        ensure_private_dir(root).map_err(|e| EscalatorError::io(root, e))?;
        let dbdir = root.join("db");
        create_durably(&dbdir)?;
        let lock = crate::lock::lock_dir(root, "escalator.lock")?;
        let mut store = Self {
            root: root.to_path_buf(),
            dbs: HashMap::new(),
            backend: backend.clone(),
            _lock: lock,
        };
        let opts = match backend {
            Backend::LevelDb(opts) => opts,
            Backend::Etcd(etcd) => {
                for name in etcd.names()? {
                    store.dbs.insert(name.clone(), Box::new(etcd.open(&name)?));
                }
                return Ok(store);
            }
        };
        for entry in fs::read_dir(&dbdir).map_err(|e| EscalatorError::io(&dbdir, e))? {
            let entry = entry.map_err(|e| EscalatorError::io(&dbdir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if check_name(&name).is_ok() && entry.path().is_dir() {
                let engine = LevelDbEngine::open(&entry.path(), opts)?;
                store
                    .dbs
                    .insert(name, Box::new(RowCache::new(engine, ROW_CACHE_BYTES)));
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

    pub fn get_mut(&mut self, name: &str) -> Result<&mut dyn Staging, Fault> {
        self.dbs
            .get_mut(name)
            .map(|e| &mut **e as &mut dyn Staging)
            .ok_or_else(|| {
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
        let storage = |e: crate::engine::EngineError| Fault::new(FaultKind::Storage, e.to_string());
        let opts = match &self.backend {
            Backend::LevelDb(opts) => *opts,
            Backend::Etcd(etcd) => {
                let engine = etcd.create(name).map_err(storage)?;
                self.dbs.insert(name.to_owned(), Box::new(engine));
                return Ok(());
            }
        };
        let dir = self.root.join("db").join(name);
        let engine = LevelDbEngine::open(&dir, opts).map_err(storage)?;
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
        let engine = RowCache::new(engine, ROW_CACHE_BYTES);
        self.dbs.insert(name.to_owned(), Box::new(engine));
        Ok(())
    }

    /// Syncs and closes every database.
    pub fn close(self) -> Result<(), EscalatorError> {
        for (_, engine) in self.dbs {
            engine.close()?;
        }
        Ok(())
    }

    /// Applies every database's staged writes; `failed` hears of each
    /// database whose batch could not be written.
    pub fn apply_staged(&mut self, mut failed: impl FnMut(&str, &crate::engine::EngineError)) {
        for (name, e) in &mut self.dbs {
            if let Err(err) = e.apply_staged() {
                failed(name, &err);
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_dir_creates_0700_and_narrows_a_wider_one() {
        let tmp = tempfile::tempdir().unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        let deep = tmp.path().join("a/b");
        assert_eq!(private_dir(&deep).unwrap(), None);
        assert_eq!(mode(&deep), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        fs::set_permissions(&deep, fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(private_dir(&deep).unwrap(), Some(0o755));
        assert_eq!(mode(&deep), 0o700);
        fs::set_permissions(&deep, fs::Permissions::from_mode(0o500)).unwrap();
        assert_eq!(private_dir(&deep).unwrap(), None, "narrower is left alone");
    }
}
