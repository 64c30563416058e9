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

use serde::{Deserialize, Serialize};

use crate::names::Part;
use crate::plan::Target;
use crate::spec::{EnvVarName, Environment, Service};
use crate::values::{NamePart, OneLine, Replicas};

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

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverride {
    pub hosts: OneLine,
    pub service: Option<NamePart>,
    pub replicas: Option<Replicas>,
    #[serde(default)]
    pub env: BTreeMap<EnvVarName, OneLine>,
}

/// The file's overrides, checked against its services.
pub(crate) fn build_overrides(
    raw: Vec<RawOverride>,
    services: &BTreeMap<Part, Service>,
) -> Result<Vec<Override>, (String, String)> {
    raw.into_iter()
        .enumerate()
        .map(|(i, o)| {
            let field = |f: &str| format!("overrides[{i}].{f}");
            vigie_changes::Selector::parse(&o.hosts.0)
                .map_err(|e| (field("hosts"), e.to_string()))?;
            if let Some(NamePart(name)) = &o.service {
                if !services.contains_key(name) {
                    return Err((
                        field("service"),
                        format!("{:?} is not one of this environment's services", name.as_str()),
                    ));
                }
            }
            if o.replicas.is_none() && o.env.is_empty() {
                return Err((
                    field("hosts"),
                    "an override changes replicas, env or both".into(),
                ));
            }
            Ok(Override {
                hosts: o.hosts.0,
                service: o.service.map(|n| n.0),
                replicas: o.replicas.map(|r| r.0),
                env: o.env.into_iter().map(|(k, v)| (k.0, v.0)).collect(),
            })
        })
        .collect()
}

impl Override {
    fn applies(&self, name: &Part, target: &Target) -> bool {
        self.service.as_ref().is_none_or(|s| s == name)
            && vigie_changes::Selector::parse(&self.hosts)
                .is_ok_and(|sel| sel.matches(&target.id, &target.labels))
    }

    /// What it does, for the plan.
    fn describe(&self) -> String {
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

/// Service `name` as it runs on `target`, and what changed it there.
pub fn service_on(
    env: &Environment,
    name: &Part,
    spec: &Service,
    target: &Target,
) -> (Service, Vec<String>) {
    let mut spec = spec.clone();
    let mut said = Vec::new();
    for o in env.overrides.iter().filter(|o| o.applies(name, target)) {
        if let Some(n) = o.replicas {
            spec.replicas = n;
        }
        spec.env
            .extend(o.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        said.push(format!("{name}: {}", o.describe()));
    }
    (spec, said)
}

/// The overrides that may change service `name`: part of its digest.
pub fn overrides_of<'a>(env: &'a Environment, name: &Part) -> Vec<&'a Override> {
    env.overrides
        .iter()
        .filter(|o| o.service.as_ref().is_none_or(|s| s == name))
        .collect()
}
