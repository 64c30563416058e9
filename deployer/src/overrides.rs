//! Per-host and per-label settings (issue 19): `overrides:` in
//! `environment.yml`, each a selector (`hosts:`, the grammar of the
//! environment's own `hosts:`: ids, globs, `label=value`), optionally one
//! `service:`, and what it changes there — `replicas:`, `env:` (added to
//! the service's own, the same names refused). Later entries win. A host's
//! plan carries the services as they run there and says which overrides
//! made them so; the overrides of a service are part of its code's digest
//! (only when it has some: an environment without them keeps its
//! instance numbers).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::names::Part;

/// One entry of `overrides:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    /// A `vigie_changes::Selector` text.
    pub hosts: String,
    /// The one service it changes (every service when `None`).
    pub service: Option<Part>,
    pub replicas: Option<u32>,
    pub env: BTreeMap<String, String>,
}

impl Override {
    /// Whether it may change service `name` (part of its digest then).
    pub fn concerns(&self, name: &Part) -> bool {
        self.service.as_ref().is_none_or(|s| s == name)
    }

    /// Whether it changes service `name` on host `id` with `labels`.
    pub fn applies(&self, name: &Part, id: &str, labels: &BTreeMap<String, String>) -> bool {
        self.concerns(name)
            && vigie_changes::Selector::parse(&self.hosts).is_ok_and(|sel| sel.matches(id, labels))
    }

    /// Its settings applied to a service's `replicas` and `env`.
    pub fn apply(&self, replicas: &mut u32, env: &mut BTreeMap<String, String>) {
        if let Some(n) = self.replicas {
            *replicas = n;
        }
        env.extend(self.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// What it does, for the plan.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if let Some(n) = self.replicas {
            what.push(format!("replicas {n}"));
        }
        if !self.env.is_empty() {
            let names: Vec<&str> = self.env.keys().map(String::as_str).collect();
            what.push(format!("env {}", names.join(", ")));
        }
        format!("{} ({})", what.join(", "), self.hosts)
    }
}
