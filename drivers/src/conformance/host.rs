//! Conformance: a throwaway host root for each check.

#![allow(clippy::unwrap_used)] // test support

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{snapshot_tree, Maker};
use crate::{Action, Driver, StepResult};

/// A fresh host for one check: `<base>/host` is the host root given to the
/// driver, `<base>/outside` a sibling no step may touch, and each step gets
/// its own stash under `<base>/stash-N`, outside the root.
pub struct Host {
    base: TempDir,
    pub root: PathBuf,
    pub outside: PathBuf,
    pub driver: Box<dyn Driver>,
    stashes: usize,
}

impl Host {
    pub fn new(make: Maker<'_>) -> Host {
        let base = tempfile::tempdir().unwrap();
        let root = base.path().join("host");
        let outside = base.path().join("outside");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), b"do not touch\n").unwrap();
        let driver = make(&root);
        Host {
            base,
            root,
            outside,
            driver,
            stashes: 0,
        }
    }

    /// A host path (`/etc/x`) on this machine.
    pub fn path(&self, host_path: &str) -> PathBuf {
        self.root.join(host_path.trim_start_matches('/'))
    }

    /// Writes a file into the root directly, as if it had always been there.
    pub fn put(&self, host_path: &str, content: &[u8], mode: u32) {
        let path = self.path(host_path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn mkdir(&self, host_path: &str, mode: u32) {
        let path = self.path(host_path);
        fs::create_dir_all(&path).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn new_stash(&mut self) -> PathBuf {
        self.stashes += 1;
        let stash = self.base.path().join(format!("stash-{}", self.stashes));
        fs::create_dir(&stash).unwrap();
        stash
    }

    pub fn snapshot(&self) -> BTreeMap<PathBuf, String> {
        snapshot_tree(&self.root)
    }

    /// The root and its outside sibling: what confinement protects.
    pub fn world(&self) -> BTreeMap<PathBuf, String> {
        let mut world = BTreeMap::new();
        for (dir, name) in [(&self.root, "host"), (&self.outside, "outside")] {
            for (path, entry) in snapshot_tree(dir) {
                world.insert(Path::new(name).join(path), entry);
            }
        }
        world
    }

    /// Prepares (which must succeed) and applies a step in a new stash.
    pub fn apply(&mut self, action: &Action) -> (PathBuf, StepResult) {
        let stash = self.new_stash();
        self.driver
            .prepare(action, &stash)
            .unwrap_or_else(|e| panic!("prepare {action:?}: {e}"));
        let result = self.driver.apply(action, &stash);
        (stash, result)
    }

    pub fn undo(&mut self, action: &Action, stash: &Path) -> StepResult {
        let result = self.driver.undo(action, stash);
        assert!(result.ok, "undo {action:?}: {}", result.summary);
        result
    }
}
