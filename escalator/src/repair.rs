//! `vigie escalator repair`: salvages every database of a data dir whose
//! logs are damaged beyond a torn tail, keeping each damaged original, then
//! proves each database opens.

use std::fs;
use std::path::{Path, PathBuf};

use crate::engine::recovery::{self, FileRepair, TailCut};
use crate::engine::{LevelDbEngine, LevelDbOptions};
use crate::error::EscalatorError;
use crate::store::check_name;

/// What a repair did, database by database.
#[derive(Debug, Default)]
pub struct RepairReport {
    pub databases: Vec<String>,
    pub repaired: Vec<FileRepair>,
    pub tails_cut: Vec<TailCut>,
}

/// Repairs the data dir `root` (locked meanwhile: not while a server runs).
pub fn repair(root: &Path) -> Result<RepairReport, EscalatorError> {
    let _lock = crate::lock::lock_dir(root, "escalator.lock")?;
    let dbdir = root.join("db");
    let mut report = RepairReport::default();
    let mut dirs: Vec<(String, PathBuf)> = Vec::new();
    for entry in fs::read_dir(&dbdir).map_err(|e| EscalatorError::io(&dbdir, e))? {
        let entry = entry.map_err(|e| EscalatorError::io(&dbdir, e))?;
        if let Some(name) = entry.file_name().to_str() {
            if check_name(name).is_ok() && entry.path().is_dir() {
                dirs.push((name.to_owned(), entry.path()));
            }
        }
    }
    dirs.sort();
    for (name, dir) in dirs {
        let (repaired, cuts) = recovery::repair(&dir)?;
        report.repaired.extend(repaired);
        report.tails_cut.extend(cuts);
        LevelDbEngine::open(&dir, LevelDbOptions::default())?.close()?;
        report.databases.push(name);
    }
    Ok(report)
}
