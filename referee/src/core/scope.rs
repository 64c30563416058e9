//! What a call may see and touch: the caller's tenant, narrowed to the
//! hosts and the applications' environments the majordomo's grant scopes
//! name (`Caller::scope`, read once here into `GrantScope`s).

use vigie_changes::GrantScope;
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller, Labels, Scope};

use crate::core::state::Tower;

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

impl Tower {
    /// Whether a host id of the caller's tenant is inside the scope; an id
    /// the tower does not know yet is judged on its name alone.
    pub fn host_visible(&self, v: &Visible, id: &str) -> bool {
        match self.hosts().get(id) {
            Some(h) => v.host(&h.rec.tenant, id, &h.rec.labels),
            None => v.host(v.tenant, id, &Labels::new()),
        }
    }

    /// A record that may name no host (audit, keys): those without one are
    /// only seen with a scope over every host.
    pub fn record_visible(&self, v: &Visible, host: &str) -> bool {
        if host.is_empty() {
            v.unscoped()
        } else {
            self.host_visible(v, host)
        }
    }

    /// Not found for a host of another tenant (it does not exist for the
    /// caller); forbidden unless the caller's scope covers `host`.
    pub fn check_host(&self, caller: &Caller, host: &str) -> Result<(), ApiFault> {
        if self
            .hosts()
            .get(host)
            .is_some_and(|h| h.rec.tenant != caller.tenant)
        {
            return Err(ApiFault::new(
                ApiFaultKind::NotFound,
                format!("no host {host}"),
            ));
        }
        if self.host_visible(&Visible::of(caller), host) {
            return Ok(());
        }
        Err(ApiFault::new(
            ApiFaultKind::Forbidden,
            format!(
                "operator {} is not permitted this on host {host}",
                caller.operator
            ),
        ))
    }
}
