//! The application catalog: named, versioned applications with their
//! repository and default services. A version, once added, is not
//! rewritten (a deploy must be able to name exactly what it ran); a new
//! version is a new record.

use vigie_wire::catalog::{AppRecord, AppSpec, CatalogAnswer};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::audit::AuditAction;
use crate::core::catalog::fault;
use crate::core::catalog_log::CatalogLog;
use crate::core::state::Core;
use crate::core::turn::{Log, Turn};

pub fn app_add(
    core: &mut Core,
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
    if let Some(old) = core.catalog().app(&key) {
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
        at_ms: turn.now_ms,
    };
    core.catalog_mut().put_app(turn, rec.clone());
    core.audit_host(
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
    Ok(CatalogAnswer::Apps(vec![rec]))
}
