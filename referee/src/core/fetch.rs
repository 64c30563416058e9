//! The history a call reads, read from the store before the call: a
//! finished change's record (status, cancel, abandon, retry, an
//! idempotent replay), a retried change's program, the audit chain, the
//! deployments. The calls themselves only look in [`Fetched`], so no
//! decision waits on the store; what they read is named by [`reads`], from
//! the tower's memory and what was read so far (a retried change's
//! program is known once its record is).

use vigie_deployer::parse_environment;
use vigie_wire::catalog::CatalogCall;
use vigie_wire::deploy::DeployCall;
use vigie_wire::tower::{ApiCall, Caller, IdemKey};

use crate::core::audit_query::AuditQuery;
use crate::core::audit_read;
use crate::core::codec::decode;
use crate::core::fetched::{Fetched, Read};
use crate::core::idem::{idem_key, Stored};
use crate::core::model::{
    change_key, deployment_key, rollout_key, spec_key, ChangeRecord, ROLLOUT_PREFIX,
};
use crate::core::state::Core;

/// What `call` reads of the store, given what was read so far.
pub fn reads(
    tower: &Core,
    caller: &Caller,
    call: &ApiCall,
    idem: Option<&IdemKey>,
    fetched: &Fetched,
) -> Vec<Read> {
    if let Some(key) = idem.filter(|_| call.mutates()) {
        if let Some(rec) = tower.idem().get(&idem_key(caller, key)) {
            // A replay answers from the record, or fails: the call is not run.
            return match &rec.answer {
                Stored::Changes(ids) => ids.iter().filter_map(|id| find(tower, id)).collect(),
                Stored::Answer(_) => Vec::new(),
            };
        }
    }
    call_reads(tower, caller, call, fetched)
}

fn call_reads(tower: &Core, caller: &Caller, call: &ApiCall, fetched: &Fetched) -> Vec<Read> {
    let audit = || Read::Prefix(crate::core::audit::PREFIX.to_vec());
    match call {
        ApiCall::Status {
            change: Some(id), ..
        }
        | ApiCall::Cancel { change: id }
        | ApiCall::Abandon { change: id, .. } => find(tower, id).into_iter().collect(),
        // Past the limit the call is refused: nothing more to read.
        ApiCall::StatusOf { changes } => changes
            .iter()
            .take(vigie_wire::limits::MAX_STATUS_OF)
            .filter_map(|id| find(tower, id))
            .collect(),
        ApiCall::Retry { change: id } => retry_reads(tower, id, fetched),
        ApiCall::Audit { .. } => audit_reads(tower, caller, call, fetched),
        ApiCall::AuditVerify => vec![Read::Key(crate::core::audit::HEAD_KEY.to_vec()), audit()],
        // A paged list is cut from its whole answer.
        ApiCall::Page { call, .. } if matches!(**call, ApiCall::Audit { .. }) => vec![audit()],
        ApiCall::Page { call, .. } => call_reads(tower, caller, call, fetched),
        ApiCall::Web(w) => web_reads(w),
        ApiCall::Deploy(DeployCall::List) => vec![Read::Prefix(
            format!("deploy/{}/", caller.tenant).into_bytes(),
        )],
        ApiCall::Deploy(DeployCall::Record {
            app, environment, ..
        }) => vec![Read::Key(deployment_key(&caller.tenant, app, environment))],
        ApiCall::Deploy(c) => rollout_reads(caller, c, fetched),
        ApiCall::Catalog(CatalogCall::SshKey) if tower.catalog().ssh_keys().is_some() => {
            vec![Read::SshKey(caller.tenant.clone())]
        }
        ApiCall::Catalog(CatalogCall::AppRemove { name, .. }) => {
            crate::core::model::app_prefixes(&caller.tenant, name)
                .into_iter()
                .map(Read::Prefix)
                .collect()
        }
        // A secret set restarts the environment's last deploy.
        ApiCall::Secrets(vigie_wire::secrets::SecretsCall::Set {
            app, environment, ..
        }) => vec![Read::Key(rollout_key(&caller.tenant, app, environment))],
        _ => Vec::new(),
    }
}

/// What a rollout call reads of the store.
fn rollout_reads(caller: &Caller, call: &DeployCall, fetched: &Fetched) -> Vec<Read> {
    let key = |tenant: &str, app: &str, env: &str| Read::Key(rollout_key(tenant, app, env));
    match call {
        DeployCall::Start { file, text, .. } => parse_environment(file, text)
            .map(|e| {
                let (app, env) = (e.key.app.to_string(), e.key.environment.to_string());
                vec![key(&caller.tenant, &app, &env)]
            })
            .unwrap_or_default(),
        DeployCall::Rollout { app, environment }
        | DeployCall::StartVersion {
            app, environment, ..
        }
        | DeployCall::Verb {
            app, environment, ..
        }
        | DeployCall::Command {
            app, environment, ..
        } => vec![key(&caller.tenant, app, environment)],
        DeployCall::Rollouts => vec![Read::Prefix(ROLLOUT_PREFIX.as_bytes().to_vec())],
        DeployCall::Follow => {
            let mut v = vec![
                Read::Prefix(ROLLOUT_PREFIX.as_bytes().to_vec()),
                Read::Prefix(crate::core::model::DEPLOY_PREFIX.as_bytes().to_vec()),
            ];
            // `start_rollout` reads the key of each rollout it starts over.
            let keys = fetched.scan(ROLLOUT_PREFIX.as_bytes()).unwrap_or_default();
            v.extend(keys.iter().map(|(k, _)| Read::Key(k.clone())));
            v
        }
        DeployCall::Progress {
            tenant,
            app,
            environment,
            ..
        } => vec![key(tenant, app, environment)],
        DeployCall::List | DeployCall::Record { .. } => Vec::new(),
    }
}

/// What a web console call reads: the credential its secret names, the
/// caller's others (a login lists them), the console's URL.
fn web_reads(call: &vigie_wire::web::WebCall) -> Vec<Read> {
    use crate::core::web_keys::{cred_key, id_of, PREFIX, URL_KEY};
    use vigie_wire::web::WebCall;
    let all = || Read::Prefix(PREFIX.to_vec());
    let one = |secret: &str| id_of(secret).map(|id| Read::Key(cred_key(id)));
    match call {
        WebCall::Login => vec![Read::Key(URL_KEY.to_vec()), all()],
        WebCall::TokenCreate { .. } | WebCall::Credentials | WebCall::Revoke { .. } => vec![all()],
        WebCall::Redeem { ticket, .. } => one(ticket).into_iter().chain([all()]).collect(),
        WebCall::Authenticate { secret } => one(secret).into_iter().collect(),
        WebCall::Announce { .. } => Vec::new(),
    }
}

/// The next page back of the audit chain, until those read hold the
/// call's answer (`audit_read.rs`).
fn audit_reads(tower: &Core, caller: &Caller, call: &ApiCall, fetched: &Fetched) -> Vec<Read> {
    let Some(query) = AuditQuery::of(call) else {
        return Vec::new();
    };
    let prefix = crate::core::audit::PREFIX;
    let k = fetched.pages_read(prefix);
    if k > 0 {
        // A page that failed or does not decode is answered as such.
        let Ok(Ok(read)) = fetched.pages(prefix).map(audit_read::decode_all) else {
            return Vec::new();
        };
        if audit_read::answered(tower, caller, &query, read) {
            return Vec::new();
        }
    }
    audit_read::page(k, tower.audit_head().last_seq)
        .map(|(start, limit)| Read::Page {
            prefix: prefix.to_vec(),
            start,
            limit,
        })
        .into_iter()
        .collect()
}

/// A change's record, unless the tower still holds its view in memory.
fn find(tower: &Core, id: &str) -> Option<Read> {
    let q = &tower.queues();
    let known = q.change(id).is_some() || q.recent().iter().any(|v| v.id == id);
    (!known).then(|| Read::Key(change_key(id)))
}

/// A retried change's stored record, and its program once the record says
/// which (unless a change not final still runs it).
fn retry_reads(tower: &Core, id: &str, fetched: &Fetched) -> Vec<Read> {
    let key = change_key(id);
    let mut v = vec![Read::Key(key.clone())];
    if let Ok(Some(bytes)) = fetched.get(&key) {
        if let Ok(rec) = decode::<ChangeRecord>(&key, bytes) {
            if tower.queues().program(&rec.spec_id).is_none() {
                v.push(Read::Key(spec_key(&rec.spec_id)));
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::turn::Turn;
    use crate::shell::history::answer;
    use std::time::Instant;
    use vigie_wire::tower::ApiFaultKind;

    #[test]
    fn a_call_names_the_history_it_reads_and_the_call_itself_reads_nothing() {
        let s = crate::shell::test_store::store();
        let mut tower = s.tower();
        let caller = Caller::internal("default", "op");
        let none = Fetched::default();
        let status = ApiCall::Status {
            change: Some("gone".into()),
            limit: 0,
        };
        let named = |call: &ApiCall| reads(&tower, &caller, call, None, &none);
        assert_eq!(named(&status), vec![Read::Key(change_key("gone"))]);
        assert_eq!(named(&ApiCall::Hosts), vec![]);
        assert_eq!(
            named(&ApiCall::AuditVerify),
            vec![
                Read::Key(crate::core::audit::HEAD_KEY.to_vec()),
                Read::Prefix(crate::core::audit::PREFIX.to_vec())
            ]
        );
        let mut turn = Turn::started();
        let now = Instant::now();
        let r = answer(
            &mut tower,
            &s.db,
            &caller,
            status.clone(),
            None,
            now,
            &mut turn,
        );
        assert_eq!(
            r.unwrap_err().kind,
            ApiFaultKind::NotFound,
            "read: not stored"
        );
        // What was not read first is a storage fault, never a read.
        let r = crate::core::handlers::replay::idempotent(
            &mut tower, &caller, status, None, &none, now, &mut turn,
        );
        assert_eq!(r.unwrap_err().kind, ApiFaultKind::Storage);
    }
}
