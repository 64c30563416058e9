//! The web console's credentials: one-time login tickets, sessions and
//! API tokens, each bound to the operator (tenant, name, key) who made it.
//! Stored as `web/cred/<id>` with only the SHA-256 of the secret; the
//! secret (`<id>.<64 hex digits>`) is said once, when it is issued. An
//! operator revoked, or whose key was rotated since, holds nothing any
//! more. Only the tower (the web daemon) redeems tickets and asks who
//! holds a secret: the web layer decides nothing about who may do what.

use sha2::{Digest, Sha256};
use vigie_wire::front::OperatorRecord;
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Origin};
use vigie_wire::web::{CredentialKind, CredentialView, WebAnswer, WebCall};

use crate::core::audit::AuditAction;
use crate::core::codec::encode;
use crate::core::fetched::Fetched;
use crate::core::state::Core;
use crate::core::turn::Turn;
use crate::core::web_keys::{cred_key, id_of, PREFIX, URL_KEY};

/// How long a login ticket is valid.
pub const TICKET_MS: u64 = 60_000;
/// The longest API token or session.
pub const MAX_VALID_MS: u64 = 366 * 24 * 3_600_000;
/// Most live credentials one operator holds (each login makes one).
pub const MAX_PER_OPERATOR: usize = 256;

/// A stored credential: never its secret.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct CredentialRecord {
    view: CredentialView,
    tenant: String,
    operator: String,
    /// The operator's key when it was issued.
    public: String,
    /// SHA-256 of the secret, hex.
    hash: String,
}

fn digest(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// The refusal of any unknown, spent, expired or mismatched secret: it
/// says nothing of which.
fn not_signed_in() -> ApiFault {
    fault(
        ApiFaultKind::Forbidden,
        "not signed in (unknown or expired)",
    )
}

/// The latest value `key` has in the turn or as read for the call: a
/// ticket redeemed earlier in this turn is already spent.
fn read(db: &Fetched, turn: &Turn, key: &[u8]) -> Result<Option<Vec<u8>>, ApiFault> {
    if let Some((_, v)) = turn.writes.iter().rev().find(|(k, _)| k == key) {
        return Ok(v.clone());
    }
    db.get(key)
        .map(|v| v.map(<[u8]>::to_vec))
        .map_err(|e| fault(ApiFaultKind::Storage, e))
}

fn record(db: &Fetched, turn: &Turn, id: &str) -> Result<Option<CredentialRecord>, ApiFault> {
    let Some(v) = read(db, turn, &cred_key(id))? else {
        return Ok(None);
    };
    vigie_wire::decode(&v)
        .map(Some)
        .map_err(|e| fault(ApiFaultKind::Storage, e.to_string()))
}

/// Splits a secret into its id and checks it against its record.
fn holder(db: &Fetched, turn: &Turn, secret: &str, now: u64) -> Result<CredentialRecord, ApiFault> {
    let id = id_of(secret).ok_or_else(not_signed_in)?;
    let rec = record(db, turn, id)?.ok_or_else(not_signed_in)?;
    if rec.hash != digest(secret) || rec.view.expires_ms <= now {
        return Err(not_signed_in());
    }
    Ok(rec)
}

fn tower_only(caller: &Caller) -> Result<(), ApiFault> {
    match caller.origin {
        Origin::Tower => Ok(()),
        Origin::Operator { .. } => Err(fault(
            ApiFaultKind::Forbidden,
            "only the tower's web daemon makes this call",
        )),
    }
}

/// The operator's current record, if `rec`'s operator is still active
/// with the key it had.
fn active_holder(core: &Core, rec: &CredentialRecord) -> Option<OperatorRecord> {
    core.access()
        .operators()
        .iter()
        .find(|o| {
            o.tenant == rec.tenant && o.name == rec.operator && !o.revoked && o.public == rec.public
        })
        .cloned()
}

pub fn web_call(
    core: &mut Core,
    caller: &Caller,
    call: WebCall,
    db: &Fetched,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    let now = turn.now_ms;
    let answer = match call {
        WebCall::Login => {
            let url = read(db, turn, URL_KEY)?.map(|v| String::from_utf8_lossy(&v).into_owned());
            let (view, secret) = issue(
                core,
                caller,
                db,
                turn,
                CredentialKind::Ticket,
                String::new(),
                TICKET_MS,
            )?;
            WebAnswer::Issued { view, secret, url }
        }
        WebCall::TokenCreate { valid_ms, label } => {
            if label.chars().count() > 128 || label.chars().any(char::is_control) {
                return Err(fault(
                    ApiFaultKind::Invalid,
                    "a token's label is at most 128 characters, no control characters",
                ));
            }
            let (view, secret) = issue(
                core,
                caller,
                db,
                turn,
                CredentialKind::Token,
                label,
                valid_ms,
            )?;
            WebAnswer::Issued {
                view,
                secret,
                url: None,
            }
        }
        WebCall::Credentials => WebAnswer::Credentials(
            own_credentials(caller, db)?
                .into_iter()
                .filter(|r| r.view.expires_ms > now)
                .map(|r| r.view)
                .collect(),
        ),
        WebCall::Revoke { id } => revoke_credential(core, caller, db, turn, &id)?,
        WebCall::Redeem { ticket, valid_ms } => redeem(core, caller, db, turn, &ticket, valid_ms)?,
        WebCall::Authenticate { secret } => {
            tower_only(caller)?;
            let rec = holder(db, turn, &secret, now)?;
            if rec.view.kind == CredentialKind::Ticket {
                return Err(not_signed_in());
            }
            let operator = active_holder(core, &rec).ok_or_else(not_signed_in)?;
            WebAnswer::Holder {
                view: rec.view,
                operator,
            }
        }
        WebCall::Announce { url } => {
            tower_only(caller)?;
            turn.put(URL_KEY.to_vec(), url.into_bytes());
            return Ok(ApiAnswer::Done);
        }
    };
    Ok(ApiAnswer::Web(answer))
}

fn own_credentials(caller: &Caller, db: &Fetched) -> Result<Vec<CredentialRecord>, ApiFault> {
    let all = db
        .scan(PREFIX)
        .map_err(|e| fault(ApiFaultKind::Storage, e))?;
    Ok(all
        .iter()
        .filter_map(|(_, v)| vigie_wire::decode::<CredentialRecord>(v).ok())
        .filter(|r| r.tenant == caller.home() && r.operator == caller.operator)
        .collect())
}

/// A new credential of the calling operator's (her expired ones are
/// forgotten meanwhile).
fn issue(
    core: &mut Core,
    caller: &Caller,
    db: &Fetched,
    turn: &mut Turn,
    kind: CredentialKind,
    label: String,
    valid_ms: u64,
) -> Result<(CredentialView, String), ApiFault> {
    if valid_ms == 0 || valid_ms > MAX_VALID_MS {
        return Err(fault(
            ApiFaultKind::Invalid,
            "a credential is valid from a second to a year",
        ));
    }
    let tenant = caller.home().to_owned();
    let Some(op) = core.access().active(&tenant, &caller.operator).cloned() else {
        return Err(fault(
            ApiFaultKind::Forbidden,
            format!("operator {} is not active", caller.operator),
        ));
    };
    let now = turn.now_ms;
    let mut live = 0;
    for r in own_credentials(caller, db)? {
        if r.view.expires_ms <= now {
            turn.delete(cred_key(&r.view.id));
        } else {
            live += 1;
        }
    }
    if live >= MAX_PER_OPERATOR {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!("{live} live sessions and tokens: revoke some first (`vigie web sessions`)"),
        ));
    }
    let id = format!("{:016x}", rand::random::<u64>());
    let secret = format!(
        "{id}.{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    let view = CredentialView {
        id,
        kind,
        label,
        created_ms: now,
        expires_ms: now.saturating_add(valid_ms),
    };
    let rec = CredentialRecord {
        view: view.clone(),
        tenant: op.tenant.clone(),
        operator: op.name.clone(),
        public: op.public.clone(),
        hash: digest(&secret),
    };
    turn.put(cred_key(&view.id), encode(&rec));
    if kind != CredentialKind::Ticket {
        let who = Caller::internal(&op.tenant, &op.name);
        let summary = format!("{} {} {}", kind.word(), view.id, view.label);
        let action = match kind {
            CredentialKind::Token => AuditAction::TokenIssued,
            _ => AuditAction::SessionIssued,
        };
        core.audit_host(turn, &who, "", action, summary);
    }
    Ok((view, secret))
}

fn revoke_credential(
    core: &mut Core,
    caller: &Caller,
    db: &Fetched,
    turn: &mut Turn,
    id: &str,
) -> Result<WebAnswer, ApiFault> {
    let mine = own_credentials(caller, db)?
        .into_iter()
        .find(|r| r.view.id == id);
    let Some(rec) = mine else {
        return Err(fault(
            ApiFaultKind::NotFound,
            format!("no session or token {id}"),
        ));
    };
    turn.delete(cred_key(id));
    let who = Caller::internal(&rec.tenant, &rec.operator);
    let summary = format!("{} {} {}", rec.view.kind.word(), id, rec.view.label);
    core.audit_host(turn, &who, "", AuditAction::CredentialRevoked, summary);
    Ok(WebAnswer::Credentials(vec![rec.view]))
}

/// A ticket becomes a session: spent here, once.
fn redeem(
    core: &mut Core,
    caller: &Caller,
    db: &Fetched,
    turn: &mut Turn,
    ticket: &str,
    valid_ms: u64,
) -> Result<WebAnswer, ApiFault> {
    tower_only(caller)?;
    let rec = holder(db, turn, ticket, turn.now_ms)?;
    if rec.view.kind != CredentialKind::Ticket {
        return Err(not_signed_in());
    }
    turn.delete(cred_key(&rec.view.id));
    let op = active_holder(core, &rec).ok_or_else(not_signed_in)?;
    let as_op = Caller {
        tenant: op.tenant.clone(),
        operator: op.name.clone(),
        scope: vigie_wire::tower::Scope::Only(Vec::new()),
        origin: Origin::Operator {
            home: op.tenant.clone(),
        },
    };
    let (view, secret) = issue(
        core,
        &as_op,
        db,
        turn,
        CredentialKind::Session,
        "console".into(),
        valid_ms,
    )?;
    Ok(WebAnswer::Issued {
        view,
        secret,
        url: None,
    })
}
