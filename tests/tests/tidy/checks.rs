//! The architecture checks: each gathers what it judges from the
//! workspace, then judges it in a function of its inputs alone (so the
//! planted tests can hand it a fault).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{deps, fnlen, modgraph, source};

/// The longest a production function may be.
pub const MAX_FN_LINES: usize = 80;

/// What the referee's core may not name: sockets, the store, the clock,
/// and the shell that holds them.
pub const CORE_BANNED: &[&str] = &[
    "zmq",
    "vigie_escalator",
    "SystemTime",
    "Instant::now",
    "crate::shell",
];

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Each member's manifest against the table (crate → its workspace
/// dependencies, then its dev ones): exactly as listed, every member in it.
pub fn crate_deps(
    root: &Path,
    members: &[String],
    table: &[(&str, &[&str], &[&str])],
) -> Vec<String> {
    let manifests: Vec<deps::Manifest> = members
        .iter()
        .map(|m| deps::manifest(&read(&root.join(m).join("Cargo.toml"))))
        .collect();
    judge_deps(&manifests, table)
}

pub fn judge_deps(manifests: &[deps::Manifest], table: &[(&str, &[&str], &[&str])]) -> Vec<String> {
    let set = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    let mut problems = Vec::new();
    for m in manifests {
        let Some((_, normal, dev)) = table.iter().find(|(n, _, _)| *n == m.name) else {
            problems.push(format!("{}: not in the dependency table", m.name));
            continue;
        };
        for (kind, got, want) in [("", &m.deps, set(normal)), ("dev-", &m.dev, set(dev))] {
            for extra in got.difference(&want) {
                problems.push(format!(
                    "{}: {kind}depends on {extra}, which the table does not allow",
                    m.name
                ));
            }
            for gone in want.difference(got) {
                problems.push(format!(
                    "{}: the table lists {kind}dependency {gone}, no longer used (remove it)",
                    m.name
                ));
            }
        }
    }
    for (name, _, _) in table {
        if !manifests.iter().any(|m| m.name == *name) {
            problems.push(format!(
                "{name}: in the table but no workspace crate (remove it)"
            ));
        }
    }
    problems
}

/// `referee/src/core/**` against [`CORE_BANNED`] (nothing to check until
/// the core exists).
pub fn core_io(root: &Path) -> Vec<String> {
    let files: Vec<(String, String)> = source::rust_files(&root.join("referee/src/core"))
        .iter()
        .map(|f| (rel(root, f), read(f)))
        .collect();
    judge_core(&files)
}

pub fn judge_core(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, text) in files {
        let code = source::production(text);
        for banned in CORE_BANNED {
            for (n, line) in code.lines().enumerate() {
                if names(line, banned) {
                    problems.push(format!("{path}:{}: the core names `{banned}`", n + 1));
                }
            }
        }
    }
    problems
}

/// Whether `line` holds `word` as a whole path segment run.
fn names(line: &str, word: &str) -> bool {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    line.match_indices(word).any(|(i, _)| {
        !ident(line[..i].chars().next_back()) && !ident(line[i + word.len()..].chars().next())
    })
}

/// The names the referee's `Core` goes by: `Tower` is its alias while
/// the concern modules' methods move into their sub-states.
pub const CORE_NAMES: &[&str] = &["Core", "Tower"];

/// Where `Core`'s methods may be: its own file.
pub const CORE_HOME: &str = "referee/src/core/state.rs";

/// The referee's production files (test files and test code left out).
fn referee_files(root: &Path) -> Vec<(String, String)> {
    let src = root.join("referee/src");
    source::rust_files(&src)
        .iter()
        .filter(|f| !source::is_test_file(Path::new(&rel(&src, f))))
        .map(|f| (rel(root, f), source::production(&read(f))))
        .collect()
}

/// Files with an `impl Core` block (or its alias) outside
/// [`CORE_HOME`], against the allow-list of files not yet moved.
pub fn core_impls(root: &Path, allowed: &[&str]) -> Vec<String> {
    judge_core_impls(&referee_files(root), allowed)
}

/// `files`: (path, production text).
pub fn judge_core_impls(files: &[(String, String)], allowed: &[&str]) -> Vec<String> {
    let mut found = BTreeSet::new();
    for (path, code) in files.iter().filter(|(p, _)| p != CORE_HOME) {
        let b: Vec<char> = code.chars().collect();
        for (i, _) in code.match_indices("impl") {
            let i = code[..i].chars().count();
            if impls_core(&b, i) {
                found.insert(path.clone());
            }
        }
    }
    let mut problems = Vec::new();
    for f in &found {
        if !allowed.contains(&f.as_str()) {
            problems.push(format!(
                "{f}: `impl Core` outside {CORE_HOME} (give the concern its own state and methods)"
            ));
        }
    }
    for a in allowed {
        if !found.contains(*a) {
            problems.push(format!(
                "{a}: no `impl Core` left, remove it from the allow-list"
            ));
        }
    }
    problems
}

/// Whether the `impl` at `i` is an inherent block on `Core` (or alias).
fn impls_core(b: &[char], i: usize) -> bool {
    let ident = |c: &char| c.is_alphanumeric() || *c == '_';
    if i > 0 && ident(&b[i - 1]) || b.get(i + 4).is_some_and(|c| !c.is_whitespace()) {
        return false;
    }
    let rest: String = b[i + 4..].iter().collect();
    let name: String = rest.trim_start().chars().take_while(ident).collect();
    let after = rest.trim_start()[name.len()..].trim_start();
    CORE_NAMES.contains(&name.as_str()) && after.starts_with('{')
}

/// `Core`'s pub fields, against the allow-list of those not yet made
/// private.
pub fn core_pub_fields(root: &Path, allowed: &[&str]) -> Vec<String> {
    let code = source::production(&read(&root.join(CORE_HOME)));
    judge_pub_fields(&code, allowed)
}

/// `code`: the production text of the file that defines `Core`.
pub fn judge_pub_fields(code: &str, allowed: &[&str]) -> Vec<String> {
    let Some(start) = code.find("pub struct Core") else {
        return vec![format!("{CORE_HOME}: no `pub struct Core`")];
    };
    let b: Vec<char> = code.chars().collect();
    let from = code[..start].chars().count();
    let body: String = b[from..source::item_end(&b, from)].iter().collect();
    let mut fields = BTreeSet::new();
    for line in body.lines().skip(1) {
        let line = line.trim_start();
        let Some(rest) = line.strip_prefix("pub") else {
            continue;
        };
        // `pub`, `pub(crate)`, `pub(super)`…
        let rest = rest.trim_start();
        let rest = match rest.strip_prefix('(') {
            Some(r) => r.split_once(')').map_or("", |(_, r)| r),
            None => rest,
        };
        if let Some((name, _)) = rest.trim_start().split_once(':') {
            fields.insert(name.trim().to_owned());
        }
    }
    let mut problems = Vec::new();
    for f in &fields {
        if !allowed.contains(&f.as_str()) {
            problems.push(format!(
                "Core::{f} is pub (keep it private to its sub-state)"
            ));
        }
    }
    for a in allowed {
        if !fields.contains(*a) {
            problems.push(format!(
                "Core::{a} is no longer pub, remove it from the allow-list"
            ));
        }
    }
    problems
}

/// Every member's production modules (test files, and modules declared
/// `#[cfg(test)] mod x;`, left out), by module path.
fn modules(root: &Path, member: &str) -> BTreeMap<modgraph::ModPath, (String, String)> {
    let src = root.join(member).join("src");
    let mut all = BTreeMap::new();
    let mut tests = Vec::new();
    for f in source::rust_files(&src) {
        let in_src = rel(&src, &f);
        if source::is_test_file(Path::new(&in_src)) {
            continue;
        }
        let text = read(&f);
        let me = modgraph::module_of(&in_src);
        tests.extend(modgraph::test_children(&source::blank(&text), &me));
        all.insert(me, (rel(root, &f), source::production(&text)));
    }
    all.retain(|m, _| !tests.iter().any(|t| m.starts_with(t)));
    all
}

/// The circles of every member against the allow-list (crate dir, its
/// circle's modules sorted).
pub fn circles(root: &Path, members: &[String], allowed: &[(&str, &[&str])]) -> Vec<String> {
    let mut found = Vec::new();
    for m in members {
        let files = modules(root, m)
            .into_iter()
            .map(|(k, (_, code))| (k, code))
            .collect();
        for c in modgraph::circles(&modgraph::graph(&files)) {
            found.push((m.clone(), c));
        }
    }
    judge_circles(&found, allowed)
}

pub fn judge_circles(found: &[(String, Vec<String>)], allowed: &[(&str, &[&str])]) -> Vec<String> {
    let same = |(m, c): &(String, Vec<String>), (am, ac): &(&str, &[&str])| m == am && c == ac;
    let mut problems = Vec::new();
    for f in found {
        if !allowed.iter().any(|a| same(f, a)) {
            problems.push(format!("{}: import circle {:?}", f.0, f.1));
        }
    }
    for a in allowed {
        if !found.iter().any(|f| same(f, a)) {
            problems.push(format!(
                "{}: allowed circle {:?} is gone or changed (update the allow-list)",
                a.0, a.1
            ));
        }
    }
    problems
}

/// Every production function's length (`path::fn`, lines; the longest of
/// a name in a file). The test kit (`tests`) is test code whole.
pub fn measure(root: &Path, members: &[String]) -> BTreeMap<String, usize> {
    let mut out: BTreeMap<String, usize> = BTreeMap::new();
    for m in members.iter().filter(|m| *m != "tests") {
        for (_, (path, code)) in modules(root, m) {
            for (name, len) in fnlen::lengths(&code) {
                let e = out.entry(format!("{path}::{name}")).or_default();
                *e = (*e).max(len);
            }
        }
    }
    out
}

pub fn long_fns(root: &Path, members: &[String], allowed: &[(&str, usize)]) -> Vec<String> {
    judge_lengths(&measure(root, members), allowed)
}

/// Over [`MAX_FN_LINES`] only when allowed, and no longer than allowed;
/// an allowed one now short or gone is a stale entry.
pub fn judge_lengths(measured: &BTreeMap<String, usize>, allowed: &[(&str, usize)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, len) in measured.iter().filter(|(_, l)| **l > MAX_FN_LINES) {
        match allowed.iter().find(|(k, _)| k == key) {
            None => problems.push(format!("(\"{key}\", {len}), over {MAX_FN_LINES} lines")),
            Some((_, most)) if len > most => {
                problems.push(format!("{key}: {len} lines, grew past its allowed {most}"))
            }
            Some(_) => {}
        }
    }
    for (key, most) in allowed {
        match measured.get(*key) {
            Some(len) if *len > MAX_FN_LINES => {}
            Some(len) => problems.push(format!(
                "{key}: now {len} lines, remove it from the allow-list (was {most})"
            )),
            None => problems.push(format!("{key}: gone, remove it from the allow-list")),
        }
    }
    problems
}

/// Every `.rs` of every member, and clippy.toml: no allowance of clippy's
/// `too_many_arguments` (a function with that many arguments wants a type).
pub fn allowances(root: &Path, members: &[String]) -> Vec<String> {
    let mut files: Vec<(String, String)> = members
        .iter()
        .flat_map(|m| source::rust_files(&root.join(m)))
        .filter(|f| !f.components().any(|c| c.as_os_str() == "target"))
        .map(|f| (rel(root, &f), source::blank(&read(&f))))
        .collect();
    files.push(("clippy.toml".into(), read(&root.join("clippy.toml"))));
    judge_allowances(&files)
}

pub fn judge_allowances(files: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, code) in files {
        for (n, line) in code.lines().enumerate() {
            if line.contains("clippy::too_many_arguments") || line.contains("too-many-arguments") {
                problems.push(format!("{path}:{}: allows too_many_arguments", n + 1));
            }
        }
    }
    problems
}
