//! A workspace crate's own dependencies on workspace crates, read from
//! its Cargo.toml: `[dependencies]` (and target-specific ones) apart from
//! `[dev-dependencies]`.

use std::collections::BTreeSet;

/// The package name and its workspace dependencies (normal, dev).
#[derive(Debug, Default, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub deps: BTreeSet<String>,
    pub dev: BTreeSet<String>,
}

/// Reads `toml`: every `vigie-*` key of a dependencies table.
pub fn manifest(toml: &str) -> Manifest {
    let mut m = Manifest::default();
    let mut section = String::new();
    for line in toml.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_owned();
            continue;
        }
        let key = line
            .split(|c: char| c == '=' || c == '.' || c.is_whitespace())
            .next()
            .unwrap_or_default();
        if section == "package" && key == "name" {
            m.name = line.split('"').nth(1).unwrap_or_default().to_owned();
        }
        if !key.starts_with("vigie-") {
            continue;
        }
        if section.ends_with("dev-dependencies") {
            m.dev.insert(key.to_owned());
        } else if section.ends_with("dependencies") {
            m.deps.insert(key.to_owned());
        }
    }
    m
}
