//! What the deployer knows it deployed, per tenant and environment: each
//! component's instance number and the digest of the spec it was made
//! from, where each service runs on each host (instance and ports), and
//! the history of deploys. Stored whole as one record per environment
//! (JSON), so another environment's deploy never prunes it (Kamal #1922).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::names::{EnvKey, Part};

/// A part of an environment that has its own instance number (seed 001's
/// columns): a service's code, a database, the cache.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    Code(Part),
    Database(Part),
    Cache,
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Component::Code(s) => write!(f, "code:{s}"),
            Component::Database(d) => write!(f, "database:{d}"),
            Component::Cache => f.write_str("cache"),
        }
    }
}

impl FromStr for Component {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        if text == "cache" {
            return Ok(Component::Cache);
        }
        if let Some(s) = text.strip_prefix("code:") {
            return Part::parse(s).map(Component::Code);
        }
        if let Some(d) = text.strip_prefix("database:") {
            return Part::parse(d).map(Component::Database);
        }
        Err(format!("{text:?} is not a component"))
    }
}

impl Serialize for Component {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Component {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A component's current instance and the digest of its spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentState {
    pub instance: u32,
    pub digest: String,
}

/// One service on one host: the instance running and its replicas' ports
/// (empty for a worker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub instance: u32,
    pub replicas: u32,
    pub ports: Vec<u16>,
}

/// An environment on one host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostState {
    /// Where this environment's proxy listens on the host.
    pub proxy_port: Option<u16>,
    pub services: BTreeMap<Part, Placement>,
    /// The host answers the maintenance page with its old code stopped:
    /// a maintenance deploy left it there (migrations committed, or the
    /// deploy was cut), and only a deploy `--from-maintenance` moves it.
    #[serde(default)]
    pub maintenance: bool,
    /// The maintenance page put up by hand (`deployments maintenance on`):
    /// the replicas still run; a deploy or `maintenance off` routes to them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Services stopped by hand (`deployments stop`): their replicas are
    /// not expected to run until `start` or a deploy of them.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub stopped: BTreeSet<Part>,
}

/// One deploy, as `vigie deployments show` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRecord {
    pub number: u32,
    /// Components bumped, with their new instance.
    pub bumped: Vec<(Component, u32)>,
    /// The change request sent to each host.
    pub changes: BTreeMap<String, String>,
    pub outcome: Outcome,
    /// Whether the deploy went through maintenance (pending migrations).
    #[serde(default)]
    pub maintenance: bool,
    /// The run that wrote an `InProgress` entry: only that run may
    /// rewrite it (`may_record`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// When the deploy was started (ms since the epoch) and by whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The revision of each service this deploy asked for.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub revisions: BTreeMap<String, String>,
    /// The application catalog's version deployed (`vigie deploy
    /// APP/ENV --version V`); `None` for an environment file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The verb this entry records (`rollback`, `stop web`...), when it
    /// is not a deploy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verb: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    /// At least one host rolled back: the inventory kept what ran before.
    RolledBack,
    /// The migrations committed but a host's upgrade failed (or the
    /// deploy was cut): the hosts not upgraded stay in maintenance.
    InMaintenance,
    /// Still running, or cut before it could say (the CLI killed): what
    /// the entry and the hosts say is what was known at its last phase.
    InProgress,
}

/// Why a record may not replace the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub stored: usize,
    pub expected: u32,
}

/// The compare-and-set of the inventory (the referee applies it): a deploy
/// planned after `expected` deploys appends its entry to a record that did
/// not move since, or rewrites the `InProgress` entry its own run wrote
/// (same number and run, the entries before it unchanged). Anything else
/// is another deploy having run meanwhile.
pub fn may_record(
    stored: Option<&EnvRecord>,
    expected: u32,
    new: &EnvRecord,
) -> Result<(), Conflict> {
    let history = stored.map_or(&[][..], |s| s.history.as_slice());
    let conflict = Conflict {
        stored: history.len(),
        expected,
    };
    let expected = expected as usize;
    if history.len() == expected && new.history.len() == expected + 1 {
        return Ok(());
    }
    let (Some(mine), Some(theirs)) = (history.last(), new.history.last()) else {
        return Err(conflict);
    };
    let rewrite = history.len() == expected + 1
        && new.history.len() == history.len()
        && mine.outcome == Outcome::InProgress
        && mine.run.is_some()
        && mine.run == theirs.run
        && mine.number == theirs.number
        && history[..expected] == new.history[..expected];
    if rewrite {
        Ok(())
    } else {
        Err(conflict)
    }
}

/// The deployer's record of one environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvRecord {
    pub key: EnvKey,
    pub components: BTreeMap<Component, ComponentState>,
    pub hosts: BTreeMap<String, HostState>,
    pub history: Vec<DeployRecord>,
}

impl EnvRecord {
    pub fn new(key: EnvKey) -> EnvRecord {
        EnvRecord {
            key,
            components: BTreeMap::new(),
            hosts: BTreeMap::new(),
            history: Vec::new(),
        }
    }

    /// The hosts left in maintenance by a deploy, old code stopped.
    pub fn in_maintenance(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter(|(_, s)| s.maintenance)
            .map(|(h, _)| h.clone())
            .collect()
    }

    /// Ports this environment holds on `host`.
    pub fn ports_on(&self, host: &str) -> BTreeSet<u16> {
        let Some(state) = self.hosts.get(host) else {
            return BTreeSet::new();
        };
        state
            .services
            .values()
            .flat_map(|p| p.ports.iter().copied())
            .chain(state.proxy_port)
            .collect()
    }

    pub fn to_json(&self) -> Result<Vec<u8>, crate::DeployError> {
        serde_json::to_vec(self).map_err(|e| crate::DeployError::Inventory(e.to_string()))
    }

    pub fn from_json(bytes: &[u8]) -> Result<EnvRecord, crate::DeployError> {
        serde_json::from_slice(bytes).map_err(|e| crate::DeployError::Inventory(e.to_string()))
    }
}
