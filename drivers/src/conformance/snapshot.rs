//! Conformance: `snapshot_tree`, how a root is proved byte-identical after
//! a rollback.

#![allow(clippy::unwrap_used)] // test support: an unreadable tree is a failed test

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::digest::file_sha256_hex;

/// Everything a rollback must restore, per entry relative to `root` (the
/// root itself is `.`): `dir <mode>`, `file <mode> <sha256>`,
/// `symlink <target>` (never followed), `other <mode>`. Modes are the 12
/// permission bits in octal. Two equal snapshots mean the trees are
/// byte-identical in content, modes, kinds and links (not timestamps or
/// ownership). Test support: panics if the tree cannot be read.
pub fn snapshot_tree(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut tree = BTreeMap::new();
    walk(root, PathBuf::from("."), &mut tree);
    tree
}

fn walk(path: &Path, rel: PathBuf, tree: &mut BTreeMap<PathBuf, String>) {
    let meta = fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("snapshot of {}: {e}", path.display()));
    let mode = meta.permissions().mode() & 0o7777;
    let kind = meta.file_type();
    let entry = if kind.is_symlink() {
        format!("symlink {}", fs::read_link(path).unwrap().display())
    } else if kind.is_dir() {
        let entries =
            fs::read_dir(path).unwrap_or_else(|e| panic!("snapshot of {}: {e}", path.display()));
        for entry in entries {
            let entry = entry.unwrap();
            walk(&entry.path(), rel.join(entry.file_name()), tree);
        }
        format!("dir {mode:o}")
    } else if kind.is_file() {
        let digest =
            file_sha256_hex(path).unwrap_or_else(|e| panic!("snapshot of {}: {e}", path.display()));
        format!("file {mode:o} {digest}")
    } else {
        format!("other {mode:o}")
    };
    tree.insert(rel, entry);
}
