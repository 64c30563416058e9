//! Host selectors: which hosts a submission targets. A submission becomes
//! one change request per matching host.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{validate_host_id, ChangeError};

/// Characters that make a selector a glob. `{` is included because globset
/// reads `{a,b}` as alternatives, the way to match several patterns at once.
const GLOB_CHARS: [char; 4] = ['*', '?', '[', '{'];

/// Which hosts a change targets, written on the command line as:
/// - `web-1`: one host, by exact id;
/// - `web-1,web-2,db-1`: a list of exact ids;
/// - `web-*`, `web-[0-9]`, `{web,db}-*`: a glob over host ids;
/// - `role=web` or `role=web,env=prod`: hosts whose labels all match.
///
/// Forms do not mix. `Display` gives the normal form, which parses back to
/// the same selector; serde uses that string form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    Host(String),
    Hosts(Vec<String>),
    Glob(HostGlob),
    Labels(BTreeMap<String, String>),
}

/// A compiled glob over host ids, kept with the pattern it came from.
#[derive(Debug, Clone)]
pub struct HostGlob {
    pattern: String,
    matcher: GlobMatcher,
}

impl HostGlob {
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    pub fn is_match(&self, host_id: &str) -> bool {
        self.matcher.is_match(host_id)
    }
}

impl PartialEq for HostGlob {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for HostGlob {}

impl Selector {
    pub fn parse(text: &str) -> Result<Selector, ChangeError> {
        let refuse = |reason: String| ChangeError::Selector {
            selector: text.to_string(),
            reason,
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(refuse(
                "it is empty (give a host id, a list of ids, a glob or labels)".into(),
            ));
        }
        if trimmed.contains(GLOB_CHARS) {
            return parse_glob(trimmed).map_err(refuse);
        }

        let items: Vec<&str> = trimmed.split(',').map(str::trim).collect();
        if items.iter().any(|item| item.is_empty()) {
            return Err(refuse("it has an empty item between commas".into()));
        }
        let labels = items.iter().filter(|item| item.contains('=')).count();
        if labels == items.len() {
            parse_labels(&items).map_err(refuse)
        } else if labels == 0 {
            parse_ids(&items).map_err(refuse)
        } else {
            Err(refuse(
                "it mixes host ids and labels (use either `web-1,web-2` or `role=web,env=prod`)"
                    .into(),
            ))
        }
    }

    /// Whether the host with this id and these labels is targeted.
    pub fn matches(&self, host_id: &str, labels: &BTreeMap<String, String>) -> bool {
        match self {
            Selector::Host(id) => id == host_id,
            Selector::Hosts(ids) => ids.iter().any(|id| id == host_id),
            Selector::Glob(glob) => glob.is_match(host_id),
            Selector::Labels(wanted) => wanted
                .iter()
                .all(|(key, value)| labels.get(key) == Some(value)),
        }
    }

    /// The ids an id or list selector names, so that the caller can refuse
    /// ids it does not know instead of silently targeting nothing. `None`
    /// for globs and labels, which may rightly match no host.
    pub fn exact_ids(&self) -> Option<&[String]> {
        match self {
            Selector::Host(id) => Some(std::slice::from_ref(id)),
            Selector::Hosts(ids) => Some(ids),
            Selector::Glob(_) | Selector::Labels(_) => None,
        }
    }
}

fn parse_glob(pattern: &str) -> Result<Selector, String> {
    if pattern.contains('=') {
        return Err("label values are matched exactly; globs apply to host ids only".into());
    }
    if pattern.contains(char::is_whitespace) {
        return Err("a glob must not contain spaces".into());
    }
    if has_top_level_comma(pattern) {
        return Err(
            "it mixes a glob with other items (one glob per selector; match several with braces: `{web-*,db-*}`)"
                .into(),
        );
    }
    // Host ids have no '/', so how globset treats separators is moot;
    // matching is case-sensitive like ids themselves.
    let glob = GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|err| format!("not a valid glob: {}", err.kind()))?;
    Ok(Selector::Glob(HostGlob {
        pattern: pattern.to_string(),
        matcher: glob.compile_matcher(),
    }))
}

/// A comma outside `{...}` and `[...]` separates items; inside, it belongs
/// to the glob.
fn has_top_level_comma(pattern: &str) -> bool {
    let mut braces = 0usize;
    let mut in_class = false;
    for c in pattern.chars() {
        match c {
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '{' if !in_class => braces += 1,
            '}' if !in_class => braces = braces.saturating_sub(1),
            ',' if !in_class && braces == 0 => return true,
            _ => {}
        }
    }
    false
}

fn parse_ids(items: &[&str]) -> Result<Selector, String> {
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for &id in items {
        validate_host_id(id).map_err(|err| err.to_string())?;
        if ids.iter().any(|seen| seen == id) {
            return Err(format!("host {id:?} is listed twice"));
        }
        ids.push(id.to_string());
    }
    match <[String; 1]>::try_from(ids) {
        Ok([id]) => Ok(Selector::Host(id)),
        Err(ids) => Ok(Selector::Hosts(ids)),
    }
}

fn parse_labels(items: &[&str]) -> Result<Selector, String> {
    let mut labels = BTreeMap::new();
    for item in items {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        let (key, value) = (key.trim(), value.trim());
        for part in [key, value] {
            check_label_part(item, part)?;
        }
        if labels.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("label {key:?} is given twice"));
        }
    }
    Ok(Selector::Labels(labels))
}

fn check_label_part(item: &str, part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err(format!("{item:?} is not `key=value`"));
    }
    if let Some(bad) = part
        .chars()
        .find(|&c| c.is_whitespace() || c.is_control() || "=,".contains(c))
    {
        return Err(format!("{item:?}: {bad:?} is not allowed in a label"));
    }
    Ok(())
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Host(id) => f.write_str(id),
            Selector::Hosts(ids) => f.write_str(&ids.join(",")),
            Selector::Glob(glob) => f.write_str(glob.as_str()),
            Selector::Labels(labels) => {
                let pairs: Vec<String> = labels
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect();
                f.write_str(&pairs.join(","))
            }
        }
    }
}

impl FromStr for Selector {
    type Err = ChangeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Selector::parse(text)
    }
}

impl Serialize for Selector {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Selector::parse(&text).map_err(serde::de::Error::custom)
    }
}
