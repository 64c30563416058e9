//! Application files (YAML) into the wire's [`AppSpec`]: a named, versioned
//! application with its repository and default services. `extra` keeps
//! what the deployer will define, so the record stays open to it.

use std::collections::BTreeMap;

use serde::Deserialize;
use vigie_wire::catalog::{AppService, AppSpec};

use crate::error::CatalogError;

/// Largest application file.
pub const MAX_APP_FILE: usize = 256 << 10;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    version: String,
    repository: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    services: Vec<Service>,
    #[serde(default)]
    extra: BTreeMap<String, String>,
    /// Each environment as `environment.yml` says it, without `app` and
    /// `environment` (the file's name and the key say them).
    #[serde(default)]
    environments: BTreeMap<String, serde_norway::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Service {
    name: String,
    #[serde(default)]
    runtime: Option<String>,
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    port: Option<u16>,
}

/// Reads an application file.
pub fn parse_app(file: &str, text: &str) -> Result<AppSpec, CatalogError> {
    let err = |message: String| CatalogError::File {
        file: file.to_owned(),
        message,
    };
    if text.len() > MAX_APP_FILE {
        return Err(err(format!("larger than {MAX_APP_FILE} bytes")));
    }
    let de = serde_norway::Deserializer::from_str(text);
    let f: File = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = inner
            .location()
            .map(|l| format!("{}:{}: ", l.line(), l.column()))
            .unwrap_or_default();
        err(format!("{at}field '{path}': {inner}"))
    })?;
    let spec = AppSpec {
        name: f.name,
        version: f.version,
        repository: f.repository,
        description: f.description,
        services: f
            .services
            .into_iter()
            .map(|s| AppService {
                name: s.name,
                runtime: s.runtime,
                command: s.command,
                port: s.port,
            })
            .collect(),
        extra: f.extra,
        environments: BTreeMap::new(),
    };
    let mut spec = spec;
    for (env, body) in f.environments {
        let text = environment_text(&spec.name, &env, &body).map_err(err)?;
        spec.environments.insert(env, text);
    }
    check_app(&spec).map_err(err)?;
    Ok(spec)
}

/// One environment of an application file as the `environment.yml` the
/// deployer reads (the referee parses it again with the deployer).
fn environment_text(app: &str, env: &str, body: &serde_norway::Value) -> Result<String, String> {
    let serde_norway::Value::Mapping(map) = body else {
        return Err(format!(
            "environments.{env}: a mapping, as in environment.yml"
        ));
    };
    for key in ["app", "environment"] {
        if map.contains_key(key) {
            return Err(format!("environments.{env}: '{key}' is said by the file"));
        }
    }
    let rest = serde_norway::to_string(body).map_err(|e| format!("environments.{env}: {e}"))?;
    Ok(format!("app: {app}\nenvironment: {env}\n{rest}"))
}

/// The rules of an application record (the referee checks them again).
pub fn check_app(a: &AppSpec) -> Result<(), String> {
    vigie_changes::validate_host_id(&a.name).map_err(|e| format!("name: {e}"))?;
    let version_ok = !a.version.is_empty()
        && a.version.len() <= 64
        && a.version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'));
    if !version_ok {
        return Err(format!(
            "version {:?}: 1 to 64 of a-z A-Z 0-9 . _ - +",
            a.version
        ));
    }
    let r = &a.repository;
    let url = ["https://", "http://", "ssh://", "git://", "file://"]
        .iter()
        .any(|p| r.starts_with(p) && r.len() > p.len());
    let scp_like = r
        .split_once(':')
        .is_some_and(|(h, p)| h.contains('@') && !p.is_empty() && !h.contains('/'));
    if !(url || scp_like) || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "repository {r:?}: a URL (https://, ssh://, git://, file://) or user@host:path"
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for s in &a.services {
        vigie_changes::validate_host_id(&s.name).map_err(|e| format!("services: name: {e}"))?;
        if !seen.insert(&s.name) {
            return Err(format!("services: {:?} is listed twice", s.name));
        }
        if s.port == Some(0) {
            return Err(format!("services: {}: port 0", s.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "name: shop\nversion: 1.2.0\nrepository: https://git.example/acme/shop.git\nservices:\n  - name: web\n    runtime: php-fpm\n    port: 8080\n  - name: worker\n    command: php artisan queue:work\nextra:\n  php: \"8.2\"\n";

    #[test]
    fn an_app_file_reads_into_a_record() {
        let a = parse_app("shop.yml", APP).unwrap();
        assert_eq!((a.name.as_str(), a.version.as_str()), ("shop", "1.2.0"));
        assert_eq!(a.services.len(), 2);
        assert_eq!(a.services[0].port, Some(8080));
        assert_eq!(a.extra.get("php").map(String::as_str), Some("8.2"));
    }

    /// Issue 25 item 3: a version's environments become the texts the
    /// deployer reads, named by the file; saying `app` again is refused.
    #[test]
    fn environments_read_as_environment_files_of_the_version() {
        let with = format!("{APP}environments:\n  prod:\n    hosts: role=web\n    follow: true\n");
        let a = parse_app("shop.yml", &with).unwrap();
        let prod = &a.environments["prod"];
        assert!(prod.starts_with("app: shop\nenvironment: prod\n"), "{prod}");
        assert!(
            prod.contains("hosts: role=web") && prod.contains("follow: true"),
            "{prod}"
        );
        let twice = format!("{APP}environments:\n  prod:\n    app: blog\n");
        let e = parse_app("shop.yml", &twice).unwrap_err();
        assert!(e.to_string().contains("'app' is said by the file"), "{e}");
    }

    #[test]
    fn the_shipped_example_reads() {
        let a = parse_app("app.yml", include_str!("../../examples/app.yml")).unwrap();
        assert_eq!(a.name, "shop");
    }

    #[test]
    fn bad_files_name_the_field() {
        let e = parse_app("x.yml", "name: shop\nversion: 1\nrepository: x\n").unwrap_err();
        assert!(e.to_string().contains("repository"), "{e}");
        let e = parse_app(
            "x.yml",
            "name: shop\nversion: 1\nrepository: https://h/r\nport: 3\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
        let dup = "name: s\nversion: 1\nrepository: git@h:r\nservices:\n  - name: a\n  - name: a\n";
        assert!(parse_app("x.yml", dup)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }
}
