//! The conventions, enforced (rust-analyzer's tidy test): every source file
//! starts with its module doc, every crate of the workspace has its
//! paragraph in ARCHITECTURE.md, and every module is named there. And the
//! architecture: which crate may depend on which, the referee's core does
//! no I/O, only `core/state.rs` has `impl Core` and `Core` has no pub
//! fields, no import circle inside a crate, no function over 80 lines, no
//! `too_many_arguments` allowance. The allow-lists (`tidy/allowed.rs`)
//! fail when stale, so they only shrink; each check has a unit test that
//! plants the fault it catches.

#[path = "tidy/allowed.rs"]
mod allowed;
#[path = "tidy/checks.rs"]
mod checks;
#[path = "tidy/deps.rs"]
mod deps;
#[path = "tidy/fnlen.rs"]
mod fnlen;
#[path = "tidy/modgraph.rs"]
mod modgraph;
#[path = "tidy/planted.rs"]
mod planted;
#[path = "tidy/source.rs"]
mod source;

use vigie_tests::workspace::{members, root, sources};

#[test]
fn every_source_file_starts_with_its_module_doc() {
    let mut missing = Vec::new();
    for m in members() {
        let mut files = Vec::new();
        sources(&root().join(&m).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let first = text
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap_or_default();
            if !first.starts_with("//!") {
                missing.push(f.strip_prefix(root()).unwrap_or(&f).display().to_string());
            }
        }
    }
    assert!(missing.is_empty(), "no module doc: {missing:#?}");
}

#[test]
fn architecture_maps_every_crate_and_module() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap_or_default();
    let mut missing = Vec::new();
    for m in members() {
        if !arch.contains(&format!("`{m}/`")) {
            missing.push(format!("crate {m}/"));
        }
        let mut files = Vec::new();
        sources(&root().join(&m).join("src"), &mut files);
        for f in files {
            let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
            let name = if stem == "mod" {
                f.parent()
                    .and_then(|d| d.file_name())
                    .and_then(|s| s.to_str())
                    .unwrap_or_default()
            } else {
                stem
            };
            // Entry points, errors and test modules are named by their
            // crate's paragraph.
            let in_tests = f
                .parent()
                .and_then(|d| d.file_name())
                .is_some_and(|d| d == "tests");
            if in_tests
                || matches!(name, "lib" | "main" | "error" | "tests" | "src")
                || name.ends_with("tests")
                || name.starts_with("test_")
            {
                continue;
            }
            if !arch.contains(&format!("`{name}")) && !arch.contains(&format!("{name}.rs")) {
                missing.push(format!("{m}: {name}"));
            }
        }
    }
    assert!(missing.is_empty(), "not in ARCHITECTURE.md: {missing:#?}");
}

#[test]
fn crates_depend_only_as_the_table_allows() {
    let problems = checks::crate_deps(&root(), &members(), allowed::CRATE_DEPS);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn referee_core_does_no_io() {
    let problems = checks::core_io(&root());
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn only_core_state_has_impl_core() {
    let problems = checks::core_impls(&root(), allowed::CORE_IMPLS);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn core_has_no_pub_fields() {
    let problems = checks::core_pub_fields(&root(), allowed::CORE_PUB_FIELDS);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn no_import_circle_inside_a_crate() {
    let problems = checks::circles(&root(), &members(), allowed::CIRCLES);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn no_production_function_over_80_lines() {
    let problems = checks::long_fns(&root(), &members(), allowed::LONG_FNS);
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn no_too_many_arguments_allowance() {
    let problems = checks::allowances(&root(), &members());
    assert!(problems.is_empty(), "{problems:#?}");
}
