//! The application catalog: named, versioned applications with their
//! repository and default services. A version, once added, is not
//! rewritten (a deploy must be able to name exactly what it ran); a new
//! version is a new record.

use vigie_wire::catalog::{AppRecord, AppSpec, CatalogAnswer};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::catalog::app_key;
use crate::core::catalog_log::CatalogLog;
use crate::core::codec::encode;
use crate::core::servers::fault;
use crate::core::tower::Tower;
use crate::core::turn::{Log, Turn};
use crate::shell::clock::now_ms;

impl Tower {
    pub(crate) fn app_add(
        &mut self,
        caller: &Caller,
        spec: AppSpec,
        turn: &mut Turn,
    ) -> Result<CatalogAnswer, ApiFault> {
        vigie_catalog::apps::check_app(&spec).map_err(|m| fault(ApiFaultKind::Invalid, m))?;
        crate::core::app_deploys::check_environments(&spec)
            .map_err(|m| fault(ApiFaultKind::Invalid, m))?;
        let key = (
            caller.tenant.clone(),
            spec.name.clone(),
            spec.version.clone(),
        );
        if let Some(old) = self.catalog.apps.get(&key) {
            if old.spec == spec {
                return Ok(CatalogAnswer::Apps(vec![old.clone()]));
            }
            return Err(fault(
                ApiFaultKind::Conflict,
                format!(
                    "application {} version {} exists with other content: give it a new version",
                    spec.name, spec.version
                ),
            ));
        }
        let rec = AppRecord {
            spec,
            tenant: caller.tenant.clone(),
            operator: caller.operator.clone(),
            at_ms: now_ms(),
        };
        turn.put(
            app_key(&caller.tenant, &rec.spec.name, &rec.spec.version),
            encode(&rec),
        );
        self.audit_host(
            turn,
            caller,
            "",
            AuditAction::AppAdded,
            format!(
                "application {} {} ({})",
                rec.spec.name, rec.spec.version, rec.spec.repository
            ),
        );
        turn.logs.push(Log::Catalog(CatalogLog::AppAdded {
            tenant: caller.tenant.clone(),
            app: rec.spec.name.clone(),
            version: rec.spec.version.clone(),
        }));
        self.catalog.apps.insert(key, rec.clone());
        Ok(CatalogAnswer::Apps(vec![rec]))
    }

    /// Every version of one application of the tenant.
    pub(crate) fn app_versions(
        &self,
        caller: &Caller,
        name: &str,
    ) -> Result<CatalogAnswer, ApiFault> {
        let v = self.apps(caller, Some(name));
        if v.is_empty() {
            return Err(fault(
                ApiFaultKind::NotFound,
                format!("no application {name}"),
            ));
        }
        Ok(CatalogAnswer::Apps(v))
    }

    /// The tenant's applications (every version), or one application's.
    pub(crate) fn apps(&self, caller: &Caller, name: Option<&str>) -> Vec<AppRecord> {
        self.catalog
            .apps
            .iter()
            .filter(|((t, n, _), _)| *t == caller.tenant && name.is_none_or(|x| x == n))
            .map(|(_, r)| r.clone())
            .collect()
    }
}
