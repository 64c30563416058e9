//! Planted faults: each check catches the one it is for, and leaves
//! alone what only looks like it (comments, strings, test code).

use std::collections::BTreeMap;

use super::checks::{
    judge_allowances, judge_circles, judge_core, judge_core_impls, judge_deps, judge_lengths,
    judge_pub_fields,
};
use super::{deps, fnlen, modgraph, source};

#[test]
fn a_dependency_off_the_table_is_caught_and_a_stale_entry_too() {
    let toml = "[package]\nname = \"vigie-metrics\"\n\n[dependencies]\n\
                vigie-wire.workspace = true\nvigie-referee = { path = \"../referee\" }\n\
                serde.workspace = true\n\n[dev-dependencies]\nvigie-tests.workspace = true\n";
    let m = deps::manifest(toml);
    assert_eq!(m.name, "vigie-metrics");
    let table: &[(&str, &[&str], &[&str])] = &[
        ("vigie-metrics", &["vigie-wire", "vigie-client"], &[]),
        ("vigie-gone", &[], &[]),
    ];
    let problems = judge_deps(&[m], table);
    assert_eq!(problems.len(), 4, "{problems:#?}");
    assert!(
        problems[0].contains("depends on vigie-referee"),
        "{problems:#?}"
    );
    assert!(
        problems[1].contains("vigie-client, no longer used"),
        "{problems:#?}"
    );
    assert!(
        problems[2].contains("dev-depends on vigie-tests"),
        "{problems:#?}"
    );
    assert!(
        problems[3].contains("vigie-gone: in the table but no"),
        "{problems:#?}"
    );
}

#[test]
fn the_core_naming_a_socket_the_store_or_the_clock_is_caught() {
    let text = "//! zmq in a doc is fine\nuse vigie_escalator::Client;\n\
                fn f() { let _ = std::time::Instant::now(); let s = \"zmq\"; }\n\
                fn g(zmq_frames: u8) -> std::time::SystemTime { todo!() }\n\
                use crate::shell::clock::now_ms;\n\
                #[cfg(test)]\nmod tests { use zmq::Socket; use crate::shell::test_store; }\n";
    let problems = judge_core(&[("referee/src/core/x.rs".into(), text.into())]);
    assert_eq!(
        problems,
        [
            "referee/src/core/x.rs:2: the core names `vigie_escalator`",
            "referee/src/core/x.rs:4: the core names `SystemTime`",
            "referee/src/core/x.rs:3: the core names `Instant::now`",
            "referee/src/core/x.rs:5: the core names `crate::shell`",
        ]
    );
}

#[test]
fn an_impl_core_outside_its_file_is_caught_and_a_stale_entry_too() {
    let prod = |t: &str| source::production(t);
    let files = vec![
        (
            "referee/src/core/state.rs".to_string(),
            prod("pub struct Core {}\nimpl Core {\n    fn a() {}\n}\n"),
        ),
        (
            "referee/src/core/hosts.rs".to_string(),
            prod("impl Tower {\n    fn b() {}\n}\n"),
        ),
        (
            "referee/src/core/keys.rs".to_string(),
            prod(
                "// impl Core {\nimpl Display for Core {}\nimpl CoreX {}\n\
                  #[cfg(test)]\nimpl Core {\n    fn t() {}\n}\n",
            ),
        ),
        (
            "referee/src/core/ips.rs".to_string(),
            prod("impl  Core\n{\n}\n"),
        ),
    ];
    let problems = judge_core_impls(
        &files,
        &["referee/src/core/ips.rs", "referee/src/core/gone.rs"],
    );
    assert_eq!(
        problems,
        [
            "referee/src/core/hosts.rs: `impl Core` outside referee/src/core/state.rs \
             (give the concern its own state and methods)",
            "referee/src/core/gone.rs: no `impl Core` left, remove it from the allow-list",
        ]
    );
}

#[test]
fn a_pub_field_of_core_is_caught_and_a_stale_entry_too() {
    let code = source::production(
        "pub struct Core {\n    /// pub doc: not a field\n    pub hosts: Map<K, V>,\n\
         pub(crate) keys: Table,\n    queues: Queues,\n    pub  audit : Chain,\n}\n\
         pub struct Loaded {\n    pub other: u8,\n}\n",
    );
    let problems = judge_pub_fields(&code, &["audit", "timing"]);
    assert_eq!(
        problems,
        [
            "Core::hosts is pub (keep it private to its sub-state)",
            "Core::keys is pub (keep it private to its sub-state)",
            "Core::timing is no longer pub, remove it from the allow-list",
        ]
    );
}

fn files(list: &[(&str, &str)]) -> BTreeMap<modgraph::ModPath, String> {
    list.iter()
        .map(|(f, text)| (modgraph::module_of(f), source::production(text)))
        .collect()
}

#[test]
fn a_planted_circle_is_caught_through_use_trees_and_super() {
    let g = modgraph::graph(&files(&[
        ("lib.rs", "mod a; mod b; pub use a::X;"),
        ("a.rs", "use crate::{b::{self, inner::W as V}, Top};\npub struct X;"),
        ("b/mod.rs", "mod inner; pub struct Y;"),
        ("b/inner.rs", "fn f() { super::super::c::g(); }"),
        ("c.rs", "pub fn g() { let _ = crate::a::X; }"),
        ("d.rs", "// crate::a::X in a comment\nfn h() { \"crate::a\"; }\n#[cfg(test)]\nmod tests { use crate::a; }"),
        ("e.rs", "use crate::d;"),
    ]));
    let found = modgraph::circles(&g);
    assert_eq!(found, [vec!["a", "b::inner", "c"]], "{g:#?}");
    let found: Vec<_> = found.into_iter().map(|c| ("x".to_owned(), c)).collect();
    assert!(judge_circles(&found, &[("x", &["a", "b::inner", "c"])]).is_empty());
    let problems = judge_circles(&found, &[("x", &["a", "c"])]);
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].contains("import circle"), "{problems:#?}");
    assert!(problems[1].contains("gone or changed"), "{problems:#?}");
}

#[test]
fn a_module_declared_for_tests_only_is_test_code() {
    let lib = "mod a;\n#[cfg(test)]\nmod mem_store;\n#[cfg(test)]\npub mod fixtures { }\n";
    assert_eq!(
        modgraph::test_children(&source::blank(lib), &Vec::new()),
        [vec!["mem_store".to_owned()]]
    );
}

#[test]
fn a_parent_and_its_child_are_no_circle() {
    let g = modgraph::graph(&files(&[
        ("lib.rs", "mod a; use crate::a::inner::Z;"),
        (
            "a/mod.rs",
            "mod inner; pub use self::inner::Z; use crate::Top;",
        ),
        ("a/inner.rs", "use super::helper; use crate::a::Q;"),
    ]));
    assert!(modgraph::circles(&g).is_empty(), "{g:#?}");
}

fn long_fn(name: &str, lines: usize) -> String {
    let body: String = (0..lines - 2)
        .map(|i| format!("    let _v{i} = \"}}{{\";\n"))
        .collect();
    format!("pub fn {name}(x: [u8; 2]) -> u8 {{\n{body}}}\n")
}

#[test]
fn a_function_over_80_lines_is_caught_and_test_code_is_not() {
    let text = format!(
        "{}{}trait T {{ fn decl(&self); }}\n#[cfg(test)]\nmod tests {{\n{}}}\n",
        long_fn("short", 80),
        long_fn("long", 81),
        long_fn("in_test", 120)
    );
    let measured: BTreeMap<String, usize> = fnlen::lengths(&source::production(&text))
        .into_iter()
        .map(|(n, l)| (format!("f.rs::{n}"), l))
        .collect();
    assert_eq!(
        measured,
        BTreeMap::from([("f.rs::short".into(), 80), ("f.rs::long".into(), 81)])
    );
    assert_eq!(
        judge_lengths(&measured, &[]),
        ["(\"f.rs::long\", 81), over 80 lines"]
    );
    assert!(judge_lengths(&measured, &[("f.rs::long", 81)]).is_empty());
    let grew = judge_lengths(
        &measured,
        &[("f.rs::long", 90), ("f.rs::short", 85), ("f.rs::gone", 99)],
    );
    assert_eq!(grew.len(), 2, "{grew:#?}");
    assert!(grew[0].contains("f.rs::short: now 80 lines"), "{grew:#?}");
    assert!(grew[1].contains("f.rs::gone: gone"), "{grew:#?}");
    let over = judge_lengths(&measured, &[("f.rs::long", 82)]);
    assert!(over.is_empty(), "a ceiling, not an exact figure: {over:#?}");
    let past = judge_lengths(&measured, &[("f.rs::long", 81 - 1)]);
    assert!(past[0].contains("grew past its allowed 80"), "{past:#?}");
}

#[test]
fn a_too_many_arguments_allowance_is_caught() {
    let files = [
        ("a.rs".to_owned(), source::blank("#[allow(clippy::too_many_arguments)]\nfn f() {}\n// clippy::too_many_arguments in prose\n")),
        ("clippy.toml".to_owned(), "too-many-arguments-threshold = 12\n".to_owned()),
    ];
    assert_eq!(
        judge_allowances(&files),
        [
            "a.rs:1: allows too_many_arguments",
            "clippy.toml:1: allows too_many_arguments"
        ]
    );
}
