//! What an environment is once read: the domain types the rest of the
//! deployer works on, and the strict serde schema they are read through
//! (unknown keys denied, every value checked where it is written).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::{EnvKey, Part};
use crate::values::{
    Count, Millis, NamePart, OneLine, PgServer, PortRange, RedisUrl, Replicas, ShellLine, UrlPath,
    DEFAULT_PG_SERVER, DEFAULT_REDIS_URL,
};

/// The ports a host hands out when the file does not say.
pub const DEFAULT_PORTS: PortRange = PortRange {
    low: 20000,
    high: 29999,
};
pub const DEFAULT_STOP_GRACE_MS: u64 = 10_000;
pub const DEFAULT_DRAIN_MS: u64 = 1_000;
pub const DEFAULT_HEALTH_RETRIES: u32 = 30;
pub const DEFAULT_HEALTH_INTERVAL_MS: u64 = 500;
pub const DEFAULT_HEALTH_TIMEOUT_MS: u64 = 2_000;
/// After the rollout, a replica's health is checked this often by its
/// host's agent...
pub const DEFAULT_WATCH_EVERY_MS: u64 = 10_000;
/// ...and restarted after this many failed checks in a row.
pub const DEFAULT_RESTART_AFTER: u32 = 3;

/// An environment of an application, as the deployer needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub key: EnvKey,
    /// Which hosts it runs on, a `vigie_changes::Selector` text.
    pub hosts: String,
    pub ports: PortRange,
    pub services: BTreeMap<Part, Service>,
    pub databases: BTreeMap<Part, Database>,
    pub cache: Option<Cache>,
    pub migrations: Option<Migrations>,
    /// A host its selector matches that joins later (online for the first
    /// time, not yet in the inventory) is deployed to by the tower, with
    /// the environment's current version (`follow: true`).
    pub follow: bool,
    /// The page nginx answers (503, `Retry-After`) while the environment
    /// is in maintenance, instead of a line of text.
    pub maintenance_page: Option<String>,
    /// Per-host and per-label settings (`overrides.rs`).
    pub overrides: Vec<crate::overrides::Override>,
}

/// Serving requests behind the proxy, or working in the background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Web,
    Worker,
}

/// One service: what its code is, how it is installed, started, checked
/// and stopped. Serialised only to be digested (its instance number is
/// bumped when this changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    pub role: Role,
    pub repository: String,
    pub revision: String,
    pub install: Option<String>,
    pub start: String,
    pub replicas: u32,
    pub health: Option<Health>,
    /// Where the proxy routes to a web service (`location` in nginx).
    pub path: Option<String>,
    pub stop_grace_ms: u64,
    pub drain_ms: u64,
    pub env: BTreeMap<String, String>,
}

/// An HTTP check of one instance on its own port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Health {
    pub path: String,
    pub retries: u32,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// `every:` and `restart_after:` as written (the defaults when absent):
    /// left out of the digest when absent, so a spec written before they
    /// existed keeps its instance numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_after: Option<u32>,
}

impl Health {
    /// How often the agent checks a replica once the rollout is over.
    pub fn watch_every_ms(&self) -> u64 {
        self.every_ms.unwrap_or(DEFAULT_WATCH_EVERY_MS)
    }

    /// Failed checks in a row that restart a replica (0: never).
    pub fn restarts_after(&self) -> u32 {
        self.restart_after.unwrap_or(DEFAULT_RESTART_AFTER)
    }

    /// How long a (re)started replica has to become healthy before its
    /// failed checks count: what the rollout gives it.
    pub fn start_ms(&self) -> u64 {
        u64::from(self.retries.max(1)) * (self.interval_ms + self.timeout_ms)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbEngine {
    Postgresql,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Database {
    pub engine: DbEngine,
    /// How the deployer reaches the server to create the database and its
    /// role (`server:`, default the local socket as `postgres`).
    pub server: PgServer,
    /// Bumping this (any text) asks for a new instance of the database.
    pub version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheEngine {
    Redis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cache {
    pub engine: CacheEngine,
    /// Where the instances find the cache (`REDIS_URL` in their `.env`).
    pub url: RedisUrl,
    pub version: Option<String>,
}

/// How to learn whether migrations are pending (exit 0: some are; 1: none)
/// and how to apply them, both run in the new code of `service`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migrations {
    pub service: Part,
    pub pending: String,
    pub apply: String,
}

// ---- the file's schema -------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEnvironment {
    pub app: NamePart,
    pub environment: NamePart,
    pub hosts: OneLine,
    pub ports: Option<PortRange>,
    pub services: BTreeMap<NamePart, RawService>,
    #[serde(default)]
    pub databases: BTreeMap<NamePart, RawDatabase>,
    pub cache: Option<RawCache>,
    pub migrations: Option<RawMigrations>,
    #[serde(default)]
    pub follow: bool,
    pub maintenance_page: Option<String>,
    pub overrides: Vec<RawOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawService {
    #[serde(rename = "type")]
    pub role: Option<Role>,
    pub repository: OneLine,
    pub revision: OneLine,
    pub install: Option<ShellLine>,
    pub start: ShellLine,
    pub replicas: Option<Replicas>,
    pub health: Option<RawHealth>,
    pub path: Option<UrlPath>,
    pub stop_grace: Option<Millis>,
    pub drain: Option<Millis>,
    #[serde(default)]
    pub env: BTreeMap<EnvVarName, OneLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealth {
    pub http: UrlPath,
    pub retries: Option<Count>,
    pub interval: Option<Millis>,
    pub timeout: Option<Millis>,
    pub every: Option<Millis>,
    pub restart_after: Option<Count>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDatabase {
    pub engine: DbEngine,
    pub server: Option<PgServer>,
    pub version: Option<OneLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCache {
    pub engine: CacheEngine,
    pub url: Option<RedisUrl>,
    pub version: Option<OneLine>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMigrations {
    pub service: NamePart,
    pub pending: ShellLine,
    pub apply: ShellLine,
}

/// One entry of `overrides:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverride {
    pub hosts: OneLine,
    pub service: Option<NamePart>,
    pub replicas: Option<Replicas>,
    #[serde(default)]
    pub env: BTreeMap<EnvVarName, OneLine>,
}

/// The file's `overrides:` (`overrides.rs`), checked against its services.
pub(crate) fn build_overrides(
    raw: Vec<RawOverride>,
    services: &BTreeMap<Part, Service>,
) -> Result<Vec<crate::overrides::Override>, (String, String)> {
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
                        format!(
                            "{:?} is not one of this environment's services",
                            name.as_str()
                        ),
                    ));
                }
            }
            if o.replicas.is_none() && o.env.is_empty() {
                return Err((
                    field("hosts"),
                    "an override changes replicas, env or both".into(),
                ));
            }
            Ok(crate::overrides::Override {
                hosts: o.hosts.0,
                service: o.service.map(|n| n.0),
                replicas: o.replicas.map(|r| r.0),
                env: o.env.into_iter().map(|(k, v)| (k.0, v.0)).collect(),
            })
        })
        .collect()
}

/// A variable a service's `env` sets. The deployer's own (`PORT`,
/// `DATABASE_URL_*`, `CACHE_PREFIX`, `VIGIE_*`) cannot be overridden.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EnvVarName(pub String);

/// Names the deployer sets in every `.env`.
pub const RESERVED_ENV: [&str; 6] = [
    "PORT",
    "BIND",
    "CACHE_PREFIX",
    "REDIS_URL",
    "INSTANCE",
    "REPLICA",
];

impl<'de> Deserialize<'de> for EnvVarName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::values::checked_text(d, "a variable name", |text| {
            let ok = text
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_uppercase() || b == b'_')
                && text
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(format!("{text:?} is not a variable name (A-Z, 0-9, _)"));
            }
            if RESERVED_ENV.contains(&text)
                || text.starts_with("DATABASE_URL")
                || text.starts_with("VIGIE_")
            {
                return Err(format!("{text:?} is set by the deployer"));
            }
            Ok(EnvVarName(text.to_string()))
        })
    }
}

/// The rules that tie keys of different places together, once the file is
/// read: a message, and the field it is about.
pub(crate) fn build(raw: RawEnvironment) -> Result<Environment, (String, String)> {
    if raw.services.is_empty() {
        return Err((
            "services".into(),
            "an environment needs at least one service".into(),
        ));
    }
    let mut services = BTreeMap::new();
    let mut paths = std::collections::BTreeSet::new();
    for (NamePart(name), s) in raw.services {
        let service = build_service(&name, s, &mut paths)?;
        services.insert(name, service);
    }
    if let Some(m) = &raw.migrations {
        if !services.contains_key(&m.service.0) {
            return Err((
                "migrations.service".into(),
                format!(
                    "{:?} is not one of this environment's services",
                    m.service.0.as_str()
                ),
            ));
        }
    }
    vigie_changes::Selector::parse(&raw.hosts.0)
        .map_err(|e| ("hosts".to_string(), e.to_string()))?;
    let overrides = build_overrides(raw.overrides, &services)?;
    Ok(Environment {
        overrides,
        key: EnvKey {
            app: raw.app.0,
            environment: raw.environment.0,
        },
        hosts: raw.hosts.0,
        follow: raw.follow,
        ports: raw.ports.unwrap_or(DEFAULT_PORTS),
        services,
        databases: raw
            .databases
            .into_iter()
            .map(|(NamePart(name), d)| {
                (
                    name,
                    Database {
                        engine: d.engine,
                        server: d.server.unwrap_or_else(default_pg_server),
                        version: d.version.map(|v| v.0),
                    },
                )
            })
            .collect(),
        cache: raw.cache.map(|c| Cache {
            engine: c.engine,
            url: c
                .url
                .unwrap_or_else(|| RedisUrl(DEFAULT_REDIS_URL.to_string())),
            version: c.version.map(|v| v.0),
        }),
        migrations: raw.migrations.map(|m| Migrations {
            service: m.service.0,
            pending: m.pending.0,
            apply: m.apply.0,
        }),
        maintenance_page: raw.maintenance_page,
    })
}

/// One service of the file, checked (`paths`: the web services' paths so
/// far, each routed once).
fn build_service(
    name: &Part,
    s: RawService,
    paths: &mut std::collections::BTreeSet<String>,
) -> Result<Service, (String, String)> {
    let role = s.role.unwrap_or(Role::Web);
    let field = |f: &str| format!("services.{name}.{f}");
    if role == Role::Web && s.health.is_none() {
        return Err((
            field("health"),
            "a web service needs a health check: traffic is switched to an instance only once it is healthy".into(),
        ));
    }
    if role == Role::Worker && s.health.is_some() {
        return Err((
            field("health"),
            "a worker is not checked over HTTP (it has no port)".into(),
        ));
    }
    if role == Role::Worker && s.path.is_some() {
        return Err((
            field("path"),
            "a worker gets no traffic from the proxy".into(),
        ));
    }
    let path = (role == Role::Web).then(|| s.path.map_or("/".to_string(), |p| p.0));
    if let Some(path) = &path {
        if !paths.insert(path.clone()) {
            return Err((
                field("path"),
                format!("another web service is already routed at {path}"),
            ));
        }
    }
    Ok(Service {
        role,
        repository: s.repository.0,
        revision: s.revision.0,
        install: s.install.map(|l| l.0),
        start: s.start.0,
        replicas: s.replicas.map_or(1, |r| r.0),
        health: s.health.map(|h| Health {
            path: h.http.0,
            retries: h.retries.map_or(DEFAULT_HEALTH_RETRIES, |c| c.0),
            interval_ms: h.interval.map_or(DEFAULT_HEALTH_INTERVAL_MS, |m| m.0),
            timeout_ms: h.timeout.map_or(DEFAULT_HEALTH_TIMEOUT_MS, |m| m.0),
            every_ms: h.every.map(|m| m.0),
            restart_after: h.restart_after.map(|c| c.0),
        }),
        path,
        stop_grace_ms: s.stop_grace.map_or(DEFAULT_STOP_GRACE_MS, |m| m.0),
        drain_ms: s.drain.map_or(DEFAULT_DRAIN_MS, |m| m.0),
        env: s.env.into_iter().map(|(k, v)| (k.0, v.0)).collect(),
    })
}

fn default_pg_server() -> PgServer {
    PgServer {
        admin: DEFAULT_PG_SERVER.to_string(),
        host: String::new(),
        params: String::new(),
    }
}

/// What every instance of `env` is told about its databases and cache:
/// `DATABASE_URL_<NAME>` for each database (and `DATABASE_URL` when there
/// is one), `REDIS_URL` and `CACHE_PREFIX`. Part of each code component's
/// digest: instances are restarted when these change.
pub fn connections(env: &Environment) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::new();
    if let Some(cache) = &env.cache {
        vars.insert("CACHE_PREFIX".into(), env.key.cache_prefix());
        vars.insert("REDIS_URL".into(), cache.url.0.clone());
    }
    for (name, spec) in &env.databases {
        let url = spec.server.app_url(&env.key.database(name));
        if env.databases.len() == 1 {
            vars.insert("DATABASE_URL".into(), url.clone());
        }
        vars.insert(
            format!(
                "DATABASE_URL_{}",
                name.as_str().to_uppercase().replace('-', "_")
            ),
            url,
        );
    }
    vars
}
