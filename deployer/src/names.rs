//! The names the deployer owns (seed 001): service directories
//! `/srv/services/auto-<app>-<env>-<service>/`, databases
//! `auto-<app>-<env>-<name>`, cache prefixes `auto-<app>-<env>:`, and the
//! proxy's `auto-<app>-<env>.conf`. Nobody else writes in these namespaces;
//! every name is built here and nowhere else.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The longest part of a name: a whole database name must stay under
/// PostgreSQL's 63 bytes (`auto-` + three parts + dashes).
pub const MAX_PART: usize = 16;

/// One part of an `auto-*` name (an app, an environment, a service, a
/// database): lowercase letters, digits and inner dashes, starting with a
/// letter. The grammar keeps `auto-a-b-c` unambiguous enough for a path, a
/// database and a Redis key, and nothing needs quoting anywhere.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Part(String);

impl Part {
    pub fn parse(text: &str) -> Result<Part, String> {
        let ok_chars = text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        let starts = text.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if text.is_empty() || text.len() > MAX_PART || !ok_chars || !starts || text.ends_with('-') {
            return Err(format!(
                "{text:?} is not a name (1-{MAX_PART} of a-z, 0-9, '-', starting with a letter, not ending with '-')"
            ));
        }
        if text.contains("--") {
            return Err(format!(
                "{text:?} has '--', which would blur the auto-* names"
            ));
        }
        Ok(Part(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Part {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Part::parse(&text)
    }
}

impl From<Part> for String {
    fn from(part: Part) -> String {
        part.0
    }
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An environment of an application: the unit the deployer's inventory is
/// kept by (per tenant), and the stem of every name it owns.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EnvKey {
    pub app: Part,
    pub environment: Part,
}

impl EnvKey {
    /// `auto-<app>-<env>`.
    pub fn stem(&self) -> String {
        format!("auto-{}-{}", self.app, self.environment)
    }

    /// `/srv/services/auto-<app>-<env>-<service>`, a host path.
    pub fn service_dir(&self, service: &Part) -> String {
        format!("/srv/services/{}-{}", self.stem(), service)
    }

    /// The directory of one instance of a service's code.
    pub fn instance_dir(&self, service: &Part, instance: u32) -> String {
        format!("{}/{}", self.service_dir(service), instance)
    }

    /// `auto-<app>-<env>-<name>`, both the database and its role.
    pub fn database(&self, name: &Part) -> String {
        format!("{}-{}", self.stem(), name)
    }

    /// `auto-<app>-<env>:`, the prefix of every cache key.
    pub fn cache_prefix(&self) -> String {
        format!("{}:", self.stem())
    }

    /// The proxy configuration of this environment on a host.
    pub fn proxy_conf(&self) -> String {
        format!("{PROXY_DIR}/{}.conf", self.stem())
    }
}

impl fmt::Display for EnvKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.environment)
    }
}

/// Where the deployer keeps what all environments of a host share: its
/// nginx (prefix, main configuration, pid, logs) and its helper scripts.
pub const PROXY_DIR: &str = "/srv/services/auto-proxy";
/// The deployer's scripts on a host (supervisor, proxy switch).
pub const BIN_DIR: &str = "/srv/services/auto-bin";

/// Every name an environment owns on a host, to refuse a spec whose names
/// overlap another environment's (`a-b` + `c` and `a` + `b-c` both give
/// `auto-a-b-c`; the grammar cannot rule that out, the inventory can).
pub fn owned_names(key: &EnvKey, services: &[Part], databases: &[Part]) -> Vec<String> {
    let mut names = vec![key.stem()];
    // One namespace for all kinds: stricter than needed (a database and a
    // directory of the same name would not clash), and simpler to reason on.
    names.extend(services.iter().map(|s| format!("{}-{s}", key.stem())));
    names.extend(databases.iter().map(|d| key.database(d)));
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(app: &str, env: &str) -> EnvKey {
        EnvKey {
            app: Part::parse(app).unwrap(),
            environment: Part::parse(env).unwrap(),
        }
    }

    #[test]
    fn names_follow_the_seed() {
        let k = key("shop", "prod");
        let web = Part::parse("web").unwrap();
        assert_eq!(k.service_dir(&web), "/srv/services/auto-shop-prod-web");
        assert_eq!(
            k.instance_dir(&web, 3),
            "/srv/services/auto-shop-prod-web/3"
        );
        assert_eq!(
            k.database(&Part::parse("main").unwrap()),
            "auto-shop-prod-main"
        );
        assert_eq!(k.cache_prefix(), "auto-shop-prod:");
    }

    #[test]
    fn parts_refuse_what_would_need_quoting_or_blur_names() {
        for bad in [
            "",
            "Shop",
            "1shop",
            "shop_",
            "sh op",
            "shop-",
            "a--b",
            "é",
            "x/y",
            "abcdefghijklmnopq",
        ] {
            assert!(Part::parse(bad).is_err(), "{bad:?}");
        }
        for good in ["a", "shop", "shop-2", "abcdefghijklmnop"] {
            assert!(Part::parse(good).is_ok(), "{good:?}");
        }
    }
}
