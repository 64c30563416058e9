//! The scalar values of an environment file, each checked inside its serde
//! visitor so that an error carries the value's own line and column.

use std::fmt;

use serde::de::{Deserialize, Deserializer};

use crate::names::Part;
pub(crate) use vigie_changes::checked_text;

/// A name part (`app`, `environment`, a service or database key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct NamePart(pub Part);

impl<'de> Deserialize<'de> for NamePart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a name", |text| Part::parse(text).map(NamePart))
    }
}

/// A line for `/bin/sh -c`: not blank, no NUL.
#[derive(Debug, Clone)]
pub(crate) struct ShellLine(pub String);

impl<'de> Deserialize<'de> for ShellLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a shell command line", |text| {
            if text.trim().is_empty() {
                return Err("the command is empty".into());
            }
            if text.contains('\0') {
                return Err("the command contains a NUL byte".into());
            }
            Ok(ShellLine(text.to_string()))
        })
    }
}

/// Text handed to git or written into `.env`: one line, no NUL.
#[derive(Debug, Clone)]
pub(crate) struct OneLine(pub String);

impl<'de> Deserialize<'de> for OneLine {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a one-line string", |text| {
            if text.is_empty() {
                return Err("must not be empty".into());
            }
            if text.contains(['\n', '\r', '\0']) {
                return Err(format!("{text:?} must be one line without NUL"));
            }
            if text.starts_with('-') {
                return Err(format!(
                    "{text:?} must not start with '-' (git would read an option)"
                ));
            }
            Ok(OneLine(text.to_string()))
        })
    }
}

/// A duration (`500ms`, `30s`, `2m`), in milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Millis(pub u64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a duration such as 30s", |text| {
            vigie_changes::parse_duration_ms(text).map(Millis)
        })
    }
}

/// The number of replicas of a service: 1 to 16.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replicas(pub u32);

/// The most replicas of one service on one host: each takes a port and a
/// process, and a rolling update walks them one at a time.
pub const MAX_REPLICAS: u32 = 16;

impl<'de> Deserialize<'de> for Replicas {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a number of replicas", |text| {
            match text.parse::<u32>() {
                Ok(n) if (1..=MAX_REPLICAS).contains(&n) => Ok(Replicas(n)),
                _ => Err(format!(
                    "{text:?} is not a number of replicas (1-{MAX_REPLICAS})"
                )),
            }
        })
    }
}

/// A count of retries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Count(pub u32);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a count", |text| match text.parse::<u32>() {
            Ok(n) if n <= 1000 => Ok(Count(n)),
            _ => Err(format!("{text:?} is not a count (0-1000)")),
        })
    }
}

/// The path a health check GETs on an instance: starts with `/`, no spaces.
#[derive(Debug, Clone)]
pub(crate) struct UrlPath(pub String);

impl<'de> Deserialize<'de> for UrlPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a URL path such as /health", |text| {
            if !text.starts_with('/') || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(format!(
                    "{text:?} is not a URL path (starts with '/', no spaces)"
                ));
            }
            Ok(UrlPath(text.to_string()))
        })
    }
}

/// A range of TCP ports `low-high` the deployer allocates from on each host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    pub fn parse(text: &str) -> Result<PortRange, String> {
        let bad = || format!("{text:?} is not a port range such as 20000-20999");
        let (low, high) = text.split_once('-').ok_or_else(bad)?;
        let low: u16 = low.trim().parse().map_err(|_| bad())?;
        let high: u16 = high.trim().parse().map_err(|_| bad())?;
        if low < 1024 || high < low {
            return Err(format!(
                "{text:?}: the range must be within 1024-65535 and low ≤ high"
            ));
        }
        Ok(PortRange { low, high })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.low, self.high)
    }
}

impl<'de> Deserialize<'de> for PortRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a port range such as 20000-20999", PortRange::parse)
    }
}

/// How the deployer reaches a PostgreSQL server as its admin role:
/// `postgresql://ROLE@[HOST][:PORT][/DB][?PARAMS]` (HOST may be a
/// percent-encoded unix socket directory, empty for libpq's default). No
/// password: the environment file ends up in change requests and their
/// audit, so authentication is the server's (`pg_hba`, `.pgpass` on the
/// host, a certificate).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PgServer {
    pub admin: String,
    /// `HOST[:PORT]`, as written.
    pub host: String,
    /// `?PARAMS` with its `?`, or empty.
    pub params: String,
}

/// libpq's default: the local unix socket, as the `postgres` role.
pub const DEFAULT_PG_SERVER: &str = "postgresql://postgres@/postgres";

impl PgServer {
    pub fn parse(text: &str) -> Result<PgServer, String> {
        let bad = |why: &str| {
            format!("{text:?} is not a PostgreSQL admin URL ({why}); write postgresql://ROLE@HOST:PORT/DB")
        };
        let rest = text
            .strip_prefix("postgresql://")
            .or_else(|| text.strip_prefix("postgres://"))
            .ok_or_else(|| bad("it starts with postgresql://"))?;
        let (rest, params) = match rest.split_once('?') {
            Some((r, p)) => (r, format!("?{p}")),
            None => (rest, String::new()),
        };
        let authority = rest.split_once('/').map_or(rest, |(a, _)| a);
        let (user, host) = authority
            .split_once('@')
            .ok_or_else(|| bad("the admin role is missing: ROLE@"))?;
        if user.contains(':') || params.contains("password") {
            // Never echoed back: the refusal lands in terminals and logs.
            return Err("the PostgreSQL admin URL holds a password (not shown): no password here, the file travels in change requests; use the server's authentication or the host's .pgpass".into());
        }
        let ok = |s: &str, extra: &str| {
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-%".contains(c) || extra.contains(c))
        };
        if user.is_empty() || !ok(user, "") {
            return Err(bad("the role is a plain name"));
        }
        if !ok(host, ":[]") || !ok(&params, "?=&/") {
            return Err(bad("unexpected characters"));
        }
        Ok(PgServer {
            admin: text.to_string(),
            host: host.to_string(),
            params,
        })
    }

    /// The URL an application connects with: its own role and database.
    pub fn app_url(&self, database: &str) -> String {
        format!(
            "postgresql://{database}@{}/{database}{}",
            self.host, self.params
        )
    }
}

impl<'de> Deserialize<'de> for PgServer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a PostgreSQL admin URL", PgServer::parse)
    }
}

/// Where the cache is: `redis://HOST:PORT[/DB]`, no password (same reason
/// as [`PgServer`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RedisUrl(pub String);

pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

impl RedisUrl {
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        let rest = text
            .strip_prefix("redis://")
            .ok_or_else(|| format!("{text:?} is not a Redis URL such as redis://127.0.0.1:6379"))?;
        if rest.contains('@') {
            return Err(
                "the Redis URL holds credentials (not shown): no credentials here, the file travels in change requests"
                    .into(),
            );
        }
        if rest.is_empty()
            || !rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:/[]".contains(c))
        {
            return Err(format!(
                "{text:?} is not a Redis URL such as redis://127.0.0.1:6379"
            ));
        }
        Ok(RedisUrl(text.to_string()))
    }
}

impl<'de> Deserialize<'de> for RedisUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_text(d, "a Redis URL", RedisUrl::parse)
    }
}
