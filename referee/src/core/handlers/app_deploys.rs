//! `apps remove`, refused while the version is in use (issue 25 item 3):
//! it spans the catalog, the deployments and rollouts the loop read for
//! it, and the audit. The rules it asks are `core/app_deploys.rs`'s.

use vigie_wire::catalog::CatalogAnswer;
use vigie_wire::deploy::{Deployment, Rollout};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller};

use crate::core::app_deploys::{in_use, read_all};
use crate::core::audit::AuditAction;
use crate::core::fetched::Fetched;
use crate::core::model::app_prefixes;
use crate::core::state::Core;
use crate::core::turn::Turn;

/// Removes one version of an application, unless it is in use.
pub fn app_remove(
    core: &mut Core,
    caller: &Caller,
    name: &str,
    version: &str,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    let key = (caller.tenant.clone(), name.to_owned(), version.to_owned());
    let Some(rec) = core.catalog().app(&key).cloned() else {
        return Err(ApiFault::new(
            ApiFaultKind::NotFound,
            format!("no version {version} of application {name}"),
        ));
    };
    let [deploys, rollouts] = app_prefixes(&caller.tenant, name);
    let deployments: Vec<Deployment> = read_all(db, &deploys)?;
    let rollouts: Vec<Rollout> = read_all(db, &rollouts)?;
    if let Some(place) = in_use(version, &deployments, &rollouts) {
        return Err(ApiFault::new(
            ApiFaultKind::Conflict,
            format!(
                "version {version} of {name} is in use: {place}; deploy another version there first"
            ),
        ));
    }
    core.catalog_mut().remove_app(turn, &key);
    let summary = format!("application {name} {version}");
    core.audit_host(turn, caller, "", AuditAction::AppRemoved, summary);
    Ok(CatalogAnswer::Apps(vec![rec]))
}
