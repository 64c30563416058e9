//! The application catalog driving deploys (issue 25 item 3): a version's
//! environments are `environment.yml` texts the referee checks with the
//! deployer when the version is added; `vigie deploy APP/ENV --version V`
//! deploys the catalog's text (never one the caller sends), and a version
//! an environment runs — or a deploy not ended is bringing — cannot be
//! removed from the catalog. Here the rules, without the core: the
//! catalog's text is `Catalog::app_environment`, the removal
//! `handlers/app_deploys.rs`.

use vigie_deployer::{parse_environment, EnvRecord, Outcome};
use vigie_wire::catalog::AppSpec;
use vigie_wire::deploy::{Deployment, Rollout};
use vigie_wire::tower::{ApiFault, ApiFaultKind};

use crate::core::codec::decode;
use crate::core::fetched::Fetched;

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// Every environment of a version parses as the deployer's, under its
/// own application's and environment's names.
pub fn check_environments(spec: &AppSpec) -> Result<(), String> {
    for (name, text) in &spec.environments {
        let file = format!("{} {} environments.{name}", spec.name, spec.version);
        let env = parse_environment(&file, text).map_err(|e| e.to_string())?;
        if env.key.app.as_str() != spec.name || env.key.environment.as_str() != name {
            return Err(format!("{file}: is {} (not {}/{name})", env.key, spec.name));
        }
    }
    Ok(())
}

/// The version an environment runs: that of its last deploy that
/// succeeded (`None`: a file, or nothing succeeded).
pub fn running_version(rec: &EnvRecord) -> Option<&str> {
    rec.history
        .iter()
        .rev()
        .find(|d| d.outcome == Outcome::Succeeded)
        .and_then(|d| d.version.as_deref())
}

/// Where `version` of `app` is in use, in words (`None`: nowhere), from
/// the tenant's deployments and rollouts of that application.
pub fn in_use(version: &str, deployments: &[Deployment], rollouts: &[Rollout]) -> Option<String> {
    let running = deployments.iter().find(|d| {
        EnvRecord::from_json(&d.record).is_ok_and(|r| running_version(&r) == Some(version))
    });
    if let Some(d) = running {
        return Some(format!("{}/{} runs it", d.app, d.environment));
    }
    rollouts
        .iter()
        .find(|r| r.end.is_none() && r.version.as_deref() == Some(version))
        .map(|r| {
            format!(
                "a deploy of {}/{} brings it (rollout {})",
                r.app, r.environment, r.id
            )
        })
}

/// `apps remove` reached the catalog's dispatch, which reads nothing:
/// it is answered by `app_remove`, with what the loop read for it.
pub fn read_first() -> ApiFault {
    fault(
        ApiFaultKind::Invalid,
        "apps remove is answered with what it reads",
    )
}

/// Every record under `prefix` (`app_remove` reads the application's
/// deployments and rollouts).
pub(crate) fn read_all<T: serde::de::DeserializeOwned>(
    db: &Fetched,
    prefix: &[u8],
) -> Result<Vec<T>, ApiFault> {
    let storage = |e: String| fault(ApiFaultKind::Storage, e);
    db.scan(prefix)
        .map_err(storage)?
        .iter()
        .map(|(k, v)| decode(k, v).map_err(|e| storage(e.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use vigie_deployer::{DeployRecord, EnvKey, Part};

    use super::*;

    fn deployment(env: &str, outcomes: &[(Outcome, Option<&str>)]) -> Deployment {
        let mut rec = EnvRecord::new(EnvKey {
            app: Part::parse("shop").unwrap(),
            environment: Part::parse(env).unwrap(),
        });
        for (i, (outcome, version)) in outcomes.iter().enumerate() {
            rec.history.push(DeployRecord {
                number: i as u32 + 1,
                bumped: Vec::new(),
                changes: Default::default(),
                outcome: *outcome,
                maintenance: false,
                run: None,
                at_ms: None,
                operator: None,
                revisions: Default::default(),
                version: version.map(str::to_owned),
                verb: None,
            });
        }
        Deployment {
            app: "shop".into(),
            environment: env.into(),
            record: rec.to_json().unwrap(),
        }
    }

    #[test]
    fn a_version_is_in_use_where_its_last_successful_deploy_runs() {
        let ok = Outcome::Succeeded;
        let back = Outcome::RolledBack;
        let all = [
            deployment("prod", &[(ok, Some("1.0")), (back, Some("2.0"))]),
            deployment("staging", &[(ok, Some("1.0")), (ok, Some("2.0"))]),
        ];
        assert_eq!(
            in_use("1.0", &all, &[]).as_deref(),
            Some("shop/prod runs it")
        );
        assert_eq!(
            in_use("2.0", &all, &[]).as_deref(),
            Some("shop/staging runs it")
        );
        assert_eq!(
            in_use("3.0", &all, &[]),
            None,
            "a rolled back version is not running"
        );
    }
}
