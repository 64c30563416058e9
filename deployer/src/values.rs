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
