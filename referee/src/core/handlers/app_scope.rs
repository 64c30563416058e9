//! Grants over applications (`deploy@shop/prod`, `logs.read@app=shop`):
//! which deploys, deployments and service logs an application scope
//! reaches, and the audited refusal of what it does not. No I/O: the
//! deployments a logs call looks at were read for it (`shell/history.rs`'s `logs_caller`).
//!
//! For `logs.read`, an application scope reaches a service's logs — never
//! a host's steps — when the tenant's inventory places that service of an
//! environment inside the scope on that very host. The service's name
//! alone cannot say whose it is (`auto-shop-x-prod-web` is `shop-x/prod`'s
//! or `shop/x-prod`'s), the inventory can.

use vigie_deployer::EnvRecord;
use vigie_wire::deploy::Deployment;
use vigie_wire::observe::{LogSource, LogsQuery};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller, Scope};

use super::scope::host_visible;
use crate::core::audit::AuditAction;
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::Turn;

/// Whether `service` (an `auto-<app>-<env>-<service>` name) on `host` is
/// a service of a deployment `vis` covers by name.
pub fn app_service(vis: &Visible, deployments: &[Deployment], host: &str, service: &str) -> bool {
    deployments.iter().any(|d| {
        vis.env(&d.app, &d.environment)
            && EnvRecord::from_json(&d.record).is_ok_and(|rec| {
                let stem = rec.key.stem();
                rec.hosts
                    .get(host)
                    .is_some_and(|h| h.services.keys().any(|s| format!("{stem}-{s}") == service))
            })
    })
}

/// Refuses, audited in the caller's tenant, what its grants do not
/// reach: `what` is what it tried, `needs` the grant it lacks.
pub(crate) fn refuse_scope(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    what: &str,
    needs: &str,
) -> ApiFault {
    let msg = format!("operator {} may not {what}: needs {needs}", caller.operator);
    tracing::warn!(event = "operator_refused", tenant = %caller.tenant, operator = %caller.operator, reason = %msg);
    core.audit_host(turn, caller, "", AuditAction::OperatorRefused, msg.clone());
    ApiFault::new(ApiFaultKind::Forbidden, msg)
}

/// The caller a logs call goes on as: itself when its host scope
/// covers the host (or it has no application scope: the host check
/// answers it); narrowed to that one host when an application scope
/// reaches the service asked for there; refused, audited, otherwise.
pub(crate) fn app_logs_caller(
    core: &mut Core,
    caller: Caller,
    query: &LogsQuery,
    deployments: &[Deployment],
    turn: &mut Turn,
) -> Result<Caller, ApiFault> {
    let vis = Visible::of(&caller);
    if !vis.has_apps() || host_visible(core, &vis, &query.host) {
        return Ok(caller);
    }
    let reached = match &query.source {
        LogSource::Service { name } => app_service(&vis, deployments, &query.host, name),
        LogSource::Steps { .. } => false,
    };
    if reached {
        return Ok(Caller {
            scope: Scope::Only(vec![query.host.clone()]),
            ..caller
        });
    }
    let what = match &query.source {
        LogSource::Service { name } => format!("read {name}'s logs on {}", query.host),
        LogSource::Steps { .. } => format!("read the steps' logs of {}", query.host),
    };
    Err(refuse_scope(
        core,
        turn,
        &caller,
        &what,
        "logs.read over the host, or over an application deployed there (its services only)",
    ))
}

#[cfg(test)]
mod tests {
    use vigie_wire::tower::{Caller, Origin, Scope};

    use super::*;

    fn deployment(app: &str, env: &str, host: &str, service: &str) -> Deployment {
        let json = format!(
            r#"{{"key":{{"app":"{app}","environment":"{env}"}},"components":{{}},"hosts":{{"{host}":{{"proxy_port":null,"services":{{"{service}":{{"instance":1,"replicas":1,"ports":[27100]}}}}}}}},"history":[]}}"#
        );
        Deployment {
            app: app.into(),
            environment: env.into(),
            record: json.into_bytes(),
        }
    }

    fn caller(scopes: &[&str]) -> Caller {
        Caller {
            scope: Scope::Only(scopes.iter().map(|s| s.to_string()).collect()),
            origin: Origin::Operator {
                home: "acme".into(),
            },
            ..Caller::internal("acme", "alice")
        }
    }

    /// An application scope reaches its own services where the inventory
    /// puts them, not another application's whose name starts the same,
    /// nor its own service on a host it does not run on.
    #[test]
    fn an_application_scope_reaches_its_services_where_they_run() {
        let all = [
            deployment("shop", "prod", "web-1", "web"),
            deployment("shop-x", "prod", "web-1", "web"),
        ];
        assert!(
            EnvRecord::from_json(&all[0].record).is_ok(),
            "the test's record parses"
        );
        let c = caller(&["app=shop"]);
        let vis = Visible::of(&c);
        assert!(app_service(&vis, &all, "web-1", "auto-shop-prod-web"));
        assert!(!app_service(&vis, &all, "web-1", "auto-shop-x-prod-web"));
        assert!(!app_service(&vis, &all, "web-2", "auto-shop-prod-web"));
        let c = caller(&["shop/staging"]);
        assert!(!app_service(
            &Visible::of(&c),
            &all,
            "web-1",
            "auto-shop-prod-web"
        ));
    }
}
