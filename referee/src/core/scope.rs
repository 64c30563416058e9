//! What a call may see and touch: the caller's tenant, narrowed to the
//! hosts and the applications' environments the majordomo's grant scopes
//! name (`Caller::scope`, read once here into `GrantScope`s).

use vigie_changes::GrantScope;
use vigie_wire::tower::{Caller, Labels, Scope};

pub struct Visible<'a> {
    tenant: &'a str,
    /// `None`: every host and environment of the tenant.
    only: Option<Vec<GrantScope>>,
}

impl<'a> Visible<'a> {
    pub fn of(caller: &'a Caller) -> Self {
        let only = match &caller.scope {
            Scope::All => None,
            // A scope that does not parse matches nothing (the referee
            // checked them when the operator was added).
            Scope::Only(texts) => Some(
                texts
                    .iter()
                    .filter_map(|t| GrantScope::parse(t).ok())
                    .collect(),
            ),
        };
        Self {
            tenant: &caller.tenant,
            only,
        }
    }

    /// The caller's tenant.
    pub fn tenant(&self) -> &'a str {
        self.tenant
    }

    /// A host of the tenant (with these labels) inside the scope.
    pub fn host(&self, tenant: &str, id: &str, labels: &Labels) -> bool {
        tenant == self.tenant
            && self
                .only
                .as_ref()
                .is_none_or(|sel| sel.iter().any(|s| s.matches_host(id, labels)))
    }

    /// The environment `app/environment` of the tenant, by name: an
    /// application scope over it (or no scope at all).
    pub fn env(&self, app: &str, environment: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|sel| sel.iter().any(|s| s.covers_env(app, environment)))
    }

    /// Whether any application scope is granted (beyond hosts).
    pub fn has_apps(&self) -> bool {
        self.only
            .as_ref()
            .is_some_and(|sel| sel.iter().any(|s| matches!(s, GrantScope::App(_))))
    }

    /// Records that name no host (operators, pending keys) are only seen
    /// with a scope over every host.
    pub fn unscoped(&self) -> bool {
        self.only.is_none()
    }
}
