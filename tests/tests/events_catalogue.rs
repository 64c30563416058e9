//! Event names are in one catalogue, `EVENTS.md` (one line per event:
//! name, daemon, meaning), that the code and the docs share: every
//! `event = "…"` of a tracing call, every `emit(SOURCE, "…")` of the
//! launcher and every `finish("…")` of the local driver names a
//! catalogued event, and every catalogued event is still emitted (its
//! name is a string literal in some crate's source). The README links
//! the catalogue.

use std::collections::{BTreeMap, BTreeSet};

use vigie_tests::workspace::{members, root, sources};

/// The catalogue: name → daemon, from the table's rows.
fn catalogue() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("EVENTS.md")).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let name = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((name.to_owned(), (*cells.get(2)?).to_owned()))
        })
        .collect()
}

/// A name: lowercase words joined by `_`.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// The string literal at the start of `text` (after blanks), if any.
fn literal(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix('"')?;
    rest.split_once('"').map(|(lit, _)| lit)
}

/// The event names `text` emits, each with its line.
fn emitted(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    for (at, _) in text.match_indices("event") {
        let rest = &text[at + "event".len()..];
        // `event = "name"` (not `some_event = …`).
        let before = text[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '"') {
            continue;
        }
        if let Some(name) = rest.trim_start().strip_prefix('=').and_then(literal) {
            out.push((name.to_owned(), line_of(at)));
        }
    }
    // The launcher's `emit(SOURCE, "name", …)`: the second argument.
    for (at, _) in text.match_indices(".emit(") {
        let rest = &text[at + ".emit(".len()..];
        let Some(first) = literal(rest) else { continue };
        let after = rest.trim_start()[first.len() + 2..].trim_start();
        if let Some(name) = after.strip_prefix(',').and_then(literal) {
            out.push((name.to_owned(), line_of(at)));
        }
    }
    // The local driver's `finish("name", …)`.
    for (at, _) in text.match_indices("finish(") {
        if let Some(name) = literal(&text[at + "finish(".len()..]) {
            out.push((name.to_owned(), line_of(at)));
        }
    }
    out.retain(|(name, _)| is_name(name));
    out
}

#[test]
fn every_event_in_the_code_is_catalogued_and_every_catalogued_one_is_emitted() {
    let catalogue = catalogue();
    assert!(
        catalogue.len() > 100,
        "EVENTS.md's table was not read ({} rows)",
        catalogue.len()
    );
    let mut missing = Vec::new();
    let mut literals = BTreeSet::new();
    for m in members() {
        let mut files = Vec::new();
        sources(&root().join(&m).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            for (name, line) in emitted(&text) {
                if !catalogue.contains_key(&name) {
                    let shown = f.strip_prefix(root()).unwrap_or(&f).display().to_string();
                    missing.push(format!("{name} ({shown}:{line})"));
                }
            }
            // Every quoted word, to find the names emitted indirectly
            // (a `match` choosing the name, a helper given it).
            for lit in text.split('"').skip(1).step_by(2) {
                if is_name(lit) {
                    literals.insert(lit.to_owned());
                }
            }
        }
    }
    let unused: Vec<&String> = catalogue
        .keys()
        .filter(|n| !literals.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "events emitted but not in EVENTS.md (add a line: name, daemon, meaning): {missing:#?}"
    );
    assert!(
        unused.is_empty(),
        "events in EVENTS.md that no code emits any more (remove their line): {unused:#?}"
    );
}

#[test]
fn the_catalogue_has_one_line_per_event_with_its_daemon_and_meaning() {
    let text = std::fs::read_to_string(root().join("EVENTS.md")).unwrap_or_default();
    let mut seen = BTreeSet::new();
    let daemons = [
        "escalator",
        "referee",
        "plug",
        "agent",
        "majordomo",
        "launcher",
        "metrics",
        "provisioner",
        "deployd",
        "web",
        "cli",
    ];
    for line in text.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`');
        assert!(is_name(name), "not an event name: {line}");
        assert!(seen.insert(name.to_owned()), "listed twice: {name}");
        assert!(
            daemons.contains(&cells.get(2).copied().unwrap_or_default()),
            "{name}: the daemon is one of {daemons:?}"
        );
        assert!(
            cells.get(3).is_some_and(|m| m.len() > 10),
            "{name}: says what it means"
        );
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap_or_default();
    assert!(
        readme.contains("EVENTS.md"),
        "the README points at the catalogue"
    );
}

#[test]
fn the_scanner_finds_each_way_an_event_is_named() {
    let code = r#"
        tracing::info!(event = "plug_started", host = %h);
        tracing::warn!(
            event = "change_stopped",
        );
        let my_event = "not_one";
        self.events.emit(
            "launcher",
            "child_exited",
            f,
        );
        finish("step_applied", action, started, result)
    "#;
    let names: Vec<String> = emitted(code).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            "plug_started",
            "change_stopped",
            "child_exited",
            "step_applied"
        ]
    );
}
