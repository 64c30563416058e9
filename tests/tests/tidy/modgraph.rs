//! A crate's module graph from its own paths (`crate::…`, `super::…`,
//! `self::…`, `use` trees included), and its circles: the strongly
//! connected components of more than one module (Tarjan).
//!
//! A module is a file. A path names the longest module prefix it has; a
//! path to the module's own ancestor or descendant is no edge (a parent
//! declares and re-exports its children), so a circle is between modules
//! neither of which contains the other.

use std::collections::{BTreeMap, BTreeSet};

/// A module's path from the crate root (`["core", "queues"]`); the root
/// is empty.
pub type ModPath = Vec<String>;

/// The module a file under `src` is: `lib.rs`/`main.rs` the root,
/// `a/mod.rs` and `a.rs` are `a`, `a/b.rs` is `a::b`.
pub fn module_of(rel_to_src: &str) -> ModPath {
    let trimmed = rel_to_src.trim_end_matches(".rs");
    let mut parts: Vec<String> = trimmed.split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod")) {
        parts.pop();
    }
    if parts.len() == 1 && matches!(parts[0].as_str(), "lib" | "main") {
        parts.clear();
    }
    parts
}

/// The paths `code` (the blanked production text of module `me`) names.
pub fn paths_in(code: &str, me: &ModPath) -> Vec<ModPath> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let Some((base, after)) = path_start(&b, i, me) else {
            i += 1;
            continue;
        };
        let mut j = after;
        tree(&b, &mut j, base, &mut out);
        i = j.max(i + 1);
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn starts(b: &[char], i: usize, word: &str) -> bool {
    word.chars()
        .enumerate()
        .all(|(k, c)| b.get(i + k) == Some(&c))
}

/// At `i`, the start of a `crate::`, `super::` or `self::` path: its base
/// module and where the rest begins.
fn path_start(b: &[char], i: usize, me: &ModPath) -> Option<(ModPath, usize)> {
    if i > 0 && (is_ident(b[i - 1]) || b[i - 1] == '$' || b[i - 1] == ':') {
        return None;
    }
    if starts(b, i, "crate::") {
        return Some((Vec::new(), i + "crate::".len()));
    }
    if starts(b, i, "self::") {
        return Some((me.clone(), i + "self::".len()));
    }
    let mut base = me.clone();
    let mut j = i;
    while starts(b, j, "super::") {
        base.pop();
        j += "super::".len();
    }
    (j > i).then_some((base, j))
}

fn skip_ws(b: &[char], j: &mut usize) {
    while *j < b.len() && b[*j].is_whitespace() {
        *j += 1;
    }
}

/// One use tree (`a::b`, `a::{b, c::d}`, `*`) under `prefix`.
fn tree(b: &[char], j: &mut usize, prefix: ModPath, out: &mut Vec<ModPath>) {
    skip_ws(b, j);
    if *j < b.len() && b[*j] == '{' {
        *j += 1;
        loop {
            skip_ws(b, j);
            if *j >= b.len() || b[*j] == '}' {
                *j += 1;
                return;
            }
            tree(b, j, prefix.clone(), out);
            // `as name`, then the separator.
            while *j < b.len() && b[*j] != ',' && b[*j] != '}' {
                *j += 1;
            }
            if *j < b.len() && b[*j] == ',' {
                *j += 1;
            }
        }
    }
    let start = *j;
    while *j < b.len() && is_ident(b[*j]) {
        *j += 1;
    }
    if *j == start {
        out.push(prefix);
        return;
    }
    let mut path = prefix;
    path.push(b[start..*j].iter().collect());
    skip_ws(b, j);
    if starts(b, *j, "::") {
        *j += 2;
        tree(b, j, path, out);
    } else {
        out.push(path);
    }
}

/// The longest prefix of `path` that is a module of `modules`.
fn resolve<'m>(path: &ModPath, modules: &'m BTreeSet<ModPath>) -> Option<&'m ModPath> {
    (1..=path.len())
        .rev()
        .find_map(|n| modules.get(&path[..n].to_vec()))
}

fn nested(a: &ModPath, b: &ModPath) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// Edges between modules (`files`: module → its blanked production text).
pub fn graph(files: &BTreeMap<ModPath, String>) -> BTreeMap<ModPath, BTreeSet<ModPath>> {
    let modules: BTreeSet<ModPath> = files.keys().cloned().collect();
    let mut edges: BTreeMap<ModPath, BTreeSet<ModPath>> = BTreeMap::new();
    for (me, code) in files {
        let targets = edges.entry(me.clone()).or_default();
        for p in paths_in(code, me) {
            if let Some(t) = resolve(&p, &modules).filter(|t| !nested(me, t)) {
                targets.insert(t.clone());
            }
        }
    }
    edges
}

/// The circles: strongly connected components of two modules or more,
/// each as sorted `a::b` names.
pub fn circles(edges: &BTreeMap<ModPath, BTreeSet<ModPath>>) -> Vec<Vec<String>> {
    let mut t = Tarjan {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        found: Vec::new(),
    };
    for v in edges.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    let mut found = t.found;
    found.sort();
    found
}

struct Tarjan<'g> {
    edges: &'g BTreeMap<ModPath, BTreeSet<ModPath>>,
    index: BTreeMap<&'g ModPath, usize>,
    low: BTreeMap<&'g ModPath, usize>,
    stack: Vec<&'g ModPath>,
    on_stack: BTreeSet<&'g ModPath>,
    next: usize,
    found: Vec<Vec<String>>,
}

impl<'g> Tarjan<'g> {
    fn visit(&mut self, v: &'g ModPath) {
        self.index.insert(v, self.next);
        self.low.insert(v, self.next);
        self.next += 1;
        self.stack.push(v);
        self.on_stack.insert(v);
        for w in self.edges.get(v).into_iter().flatten() {
            if !self.index.contains_key(w) {
                self.visit(w);
                let lw = self.low[w];
                let lv = self.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if self.on_stack.contains(w) {
                let iw = self.index[w];
                let lv = self.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if self.low[v] == self.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = self.stack.pop() {
                self.on_stack.remove(w);
                scc.push(w.join("::"));
                if w == v {
                    break;
                }
            }
            if scc.len() > 1 {
                scc.sort();
                self.found.push(scc);
            }
        }
    }
}
