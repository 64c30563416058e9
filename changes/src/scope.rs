//! What a grant covers (`VERB@SCOPE`), parsed once into a type: every
//! host and application of the tenant (`*`), the hosts a selector
//! matches (`web-*`, `role=db`), or an application's environments
//! (`shop/prod`, `shop/*`, `app=shop`).
//!
//! The grammar is unambiguous: host ids and label selectors never hold a
//! `/` without an `=`, so `APP/ENV` and `APP/*` are applications; and in
//! a grant — only there, not in `--target` — the label key `app` is
//! taken: `app=shop` is the application `shop` (`shop/*`), never hosts
//! labelled `app=shop`.

use std::fmt;

use vigie_wire::front::Verb;

use crate::{ChangeError, Selector};

/// An application's environments: one (`shop/prod`) or all (`shop/*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppScope {
    pub app: String,
    /// `None`: every environment of the application.
    pub environment: Option<String>,
}

impl AppScope {
    /// Whether `app/environment` is inside.
    pub fn covers(&self, app: &str, environment: &str) -> bool {
        self.app == app && self.environment.as_deref().is_none_or(|e| e == environment)
    }
}

impl fmt::Display for AppScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env = self.environment.as_deref().unwrap_or("*");
        write!(f, "{}/{env}", self.app)
    }
}

/// A grant's scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantScope {
    /// `*`: every host and every application of the tenant.
    Everything,
    Hosts(Selector),
    App(AppScope),
}

/// The verbs an application scope means something for: the environments
/// one may deploy, whose deployments one reads, whose services' logs,
/// whose deploy secrets one manages.
pub const APP_VERBS: [Verb; 4] = [
    Verb::Deploy,
    Verb::ChangesRead,
    Verb::LogsRead,
    Verb::SecretsAdmin,
];

impl GrantScope {
    pub fn parse(text: &str) -> Result<GrantScope, ChangeError> {
        let refuse = |reason: String| ChangeError::Scope {
            scope: text.to_owned(),
            reason,
        };
        let t = text.trim();
        if t == "*" {
            return Ok(GrantScope::Everything);
        }
        if let Some(app) = t.strip_prefix("app=") {
            if app.contains(',') {
                return Err(refuse(
                    "`app=NAME` names one application and mixes with nothing".into(),
                ));
            }
            part("application", app).map_err(refuse)?;
            return Ok(GrantScope::App(AppScope {
                app: app.to_owned(),
                environment: None,
            }));
        }
        if let Some((app, env)) = t.split_once('/').filter(|_| !t.contains('=')) {
            part("application", app).map_err(refuse)?;
            let environment = match env {
                "*" => None,
                e => Some(part("environment", e).map_err(refuse)?.to_owned()),
            };
            return Ok(GrantScope::App(AppScope {
                app: app.to_owned(),
                environment,
            }));
        }
        Selector::parse(t).map(GrantScope::Hosts)
    }

    /// Whether this scope means something for `verb`: an application's
    /// only for [`APP_VERBS`], hosts for every verb but `deploy` (an
    /// environment is deployed by name, its hosts follow from it).
    pub fn fits(&self, verb: Verb) -> Result<(), String> {
        match self {
            GrantScope::Everything => Ok(()),
            GrantScope::App(_) if !APP_VERBS.contains(&verb) => Err(format!(
                "{} is not granted over an application (only {})",
                verb.word(),
                APP_VERBS.map(Verb::word).join(", ")
            )),
            GrantScope::Hosts(_) if verb == Verb::Deploy => Err(
                "deploy is granted over applications (APP/ENV, APP/*, app=APP) or `*`, not hosts"
                    .into(),
            ),
            _ => Ok(()),
        }
    }

    /// Whether a host with this id and these labels is inside.
    pub fn matches_host(
        &self,
        id: &str,
        labels: &std::collections::BTreeMap<String, String>,
    ) -> bool {
        match self {
            GrantScope::Everything => true,
            GrantScope::Hosts(s) => s.matches(id, labels),
            GrantScope::App(_) => false,
        }
    }

    /// Whether the environment `app/environment` is inside by name.
    pub fn covers_env(&self, app: &str, environment: &str) -> bool {
        match self {
            GrantScope::Everything => true,
            GrantScope::App(a) => a.covers(app, environment),
            GrantScope::Hosts(_) => false,
        }
    }
}

impl fmt::Display for GrantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantScope::Everything => f.write_str("*"),
            GrantScope::Hosts(s) => s.fmt(f),
            GrantScope::App(a) => a.fmt(f),
        }
    }
}

/// An application's or environment's name, as the deployer spells them
/// (`vigie_deployer::Part`: 1-16 of a-z 0-9 '-', a letter first).
fn part<'a>(what: &str, text: &'a str) -> Result<&'a str, String> {
    let ok = !text.is_empty()
        && text.len() <= 16
        && text.starts_with(|c: char| c.is_ascii_lowercase())
        && !text.ends_with('-')
        && !text.contains("--")
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(text)
    } else {
        Err(format!(
            "{what} {text:?} is not a name (1-16 of a-z, 0-9, '-', starting with a letter)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn p(text: &str) -> GrantScope {
        GrantScope::parse(text).unwrap()
    }

    #[test]
    fn applications_hosts_and_everything_parse_apart() {
        assert_eq!(p("*"), GrantScope::Everything);
        assert_eq!(p("shop/prod").to_string(), "shop/prod");
        assert_eq!(p("shop/*").to_string(), "shop/*");
        assert_eq!(p("app=shop"), p("shop/*"), "app=NAME is every environment");
        assert!(matches!(p("web-*"), GrantScope::Hosts(_)));
        assert!(matches!(p("role=db"), GrantScope::Hosts(_)));
        // A label value with a '/' stays a host label.
        assert!(matches!(p("team=a/b"), GrantScope::Hosts(_)));
        for bad in [
            "app=shop,role=web",
            "Shop/prod",
            "shop/",
            "/prod",
            "shop/p--x",
            "app=",
        ] {
            assert!(GrantScope::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_application_scope_covers_its_environments_by_name_and_no_host() {
        let labels: BTreeMap<String, String> = [("app".into(), "shop".into())].into();
        let staging = p("shop/staging");
        assert!(staging.covers_env("shop", "staging"));
        assert!(!staging.covers_env("shop", "prod"));
        assert!(!staging.covers_env("shop-x", "staging"));
        assert!(p("app=shop").covers_env("shop", "prod"));
        assert!(
            !p("app=shop").covers_env("shop-x", "prod"),
            "no prefix match"
        );
        assert!(
            !p("app=shop").matches_host("web-1", &labels),
            "app= is never a label"
        );
        assert!(p("*").covers_env("blog", "prod"));
        assert!(!p("role=web").covers_env("shop", "prod"));
    }

    #[test]
    fn each_verb_takes_the_scopes_that_mean_something_for_it() {
        assert!(p("shop/*").fits(Verb::Deploy).is_ok());
        assert!(p("app=shop").fits(Verb::LogsRead).is_ok());
        assert!(p("shop/prod").fits(Verb::ChangesRead).is_ok());
        assert!(p("shop/prod").fits(Verb::SecretsAdmin).is_ok());
        assert!(p("shop/*").fits(Verb::ChangesSubmit).is_err());
        assert!(p("shop/*").fits(Verb::HostsAdmin).is_err());
        assert!(p("web-*").fits(Verb::Deploy).is_err());
        assert!(p("*").fits(Verb::Deploy).is_ok());
    }
}
