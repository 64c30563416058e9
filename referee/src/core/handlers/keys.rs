//! The key calls: knocks recorded as pending, keys added, accepted,
//! readmitted and revoked. Each change goes to the registry
//! (`access.rs`), the audit, and `KEYS_TOPIC` after it is stored: the
//! majordomo keeps a copy and enforces it at the door.

use vigie_wire::front::{KeyRecord, KeyState, KEYS_TOPIC};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Published};

use super::scope::{check_host, record_visible};
use crate::core::audit::AuditAction;
use crate::core::keys::{check_public, KeyCall, MAX_PENDING};
use crate::core::scope::Visible;
use crate::core::state::Core;
use crate::core::turn::{Log, Turn};

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

pub fn key_call(
    core: &mut Core,
    caller: &Caller,
    call: KeyCall,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    match call {
        KeyCall::List => {
            let vis = Visible::of(caller);
            Ok(ApiAnswer::Keys(
                core.access()
                    .keys()
                    .values()
                    .filter(|k| k.tenant == caller.tenant)
                    .filter(|k| record_visible(core, &vis, &k.host))
                    .cloned()
                    .collect(),
            ))
        }
        KeyCall::Pending { knocks, dropped } => {
            knocks_in(core, caller, knocks, dropped, turn);
            Ok(ApiAnswer::Done)
        }
        KeyCall::Add { host, public } => key_add(core, caller, host, public, turn),
        KeyCall::Accept { host, public } => key_accept(core, caller, host, public, turn),
        KeyCall::Readmit { host, public } => key_readmit(core, caller, host, public, turn),
        KeyCall::Revoke { host } => key_revoke(core, caller, host, turn),
    }
}

/// A batch of knocks from the door (already rate-limited there): stores
/// the new keys as pending up to [`MAX_PENDING`], and audits the batch as
/// one record rather than one per key.
fn knocks_in(
    core: &mut Core,
    caller: &Caller,
    knocks: Vec<vigie_wire::front::Knock>,
    dropped: u64,
    turn: &mut Turn,
) {
    let mut pending = core.access().pending();
    let (mut stored, mut over) = (0usize, dropped);
    let mut seen = std::collections::BTreeSet::new();
    let mut addresses = std::collections::BTreeSet::new();
    for k in knocks {
        if check_public(&k.public).is_err()
            || core.access().keys().contains_key(&k.public)
            || !seen.insert(k.public.clone())
        {
            continue;
        }
        if pending >= MAX_PENDING {
            over += 1;
            continue;
        }
        pending += 1;
        stored += 1;
        addresses.insert(k.address.clone());
        let rec = KeyRecord {
            public: k.public,
            host: String::new(),
            tenant: caller.tenant.clone(),
            state: KeyState::Pending,
            address: k.address,
        };
        core.access_mut().put_key(turn, rec.clone());
        turn.publish
            .push((vec![KEYS_TOPIC.to_vec()], Published::Key(rec)));
    }
    if stored == 0 && over == 0 {
        return;
    }
    let mut from: Vec<String> = addresses.into_iter().take(10).collect();
    if from.is_empty() {
        from.push("-".into());
    }
    turn.logs.push(Log::KeysPending {
        stored,
        dropped: over,
    });
    core.audit_host(
        turn,
        caller,
        "",
        AuditAction::KeysPending,
        format!(
            "{stored} unknown key(s) recorded as pending, {over} dropped by the limits; from {}",
            from.join(", ")
        ),
    );
}

/// Stores a key record, audits and publishes it.
pub(crate) fn store_key(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    rec: KeyRecord,
    action: AuditAction,
) {
    core.access_mut().put_key(turn, rec.clone());
    let summary = format!("key {} {}", rec.public, rec.state.word());
    core.audit_host(turn, caller, &rec.host, action, summary);
    turn.logs.push(Log::KeyChanged {
        host: rec.host.clone(),
        public: rec.public.clone(),
        state: rec.state.word(),
    });
    turn.publish
        .push((vec![KEYS_TOPIC.to_vec()], Published::Key(rec)));
}

/// An agent's key must not be an operator's.
fn check_not_operator(core: &Core, public: &str) -> Result<(), ApiFault> {
    if core.access().is_operator_key(public) {
        return Err(fault(
            ApiFaultKind::Conflict,
            "this key belongs to an operator: an agent needs its own key",
        ));
    }
    Ok(())
}

fn check_host_id(host: &str) -> Result<(), ApiFault> {
    vigie_changes::validate_host_id(host).map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))
}

/// `keys add HOST KEY`: an agent's key accepted for a host, made if new.
fn key_add(
    core: &mut Core,
    caller: &Caller,
    host: String,
    public: String,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    check_public(&public)?;
    check_not_operator(core, &public)?;
    check_host_id(&host)?;
    if let Some(k) = core.access().keys().get(&public) {
        if k.host == host && k.tenant == caller.tenant && k.state == KeyState::Revoked {
            return Err(readmit_hint(&host, &public));
        }
        if k.host != host || k.tenant != caller.tenant || k.state == KeyState::Revoked {
            // Says nothing of which host or tenant has it.
            return Err(fault(
                ApiFaultKind::Conflict,
                "this key cannot be used for this host: make a new one on the \
                 agent (`vigie keys gen`)",
            ));
        }
    }
    super::host_calls::host_add(
        core,
        caller,
        &host,
        crate::core::labels::Register::Ensure,
        turn,
    )?;
    let rec = KeyRecord {
        public,
        host,
        tenant: caller.tenant.clone(),
        state: KeyState::Accepted,
        address: String::new(),
    };
    store_key(core, turn, caller, rec, AuditAction::KeyAdded);
    Ok(ApiAnswer::Done)
}

/// `keys accept HOST KEY`: a pending key accepted for a host.
fn key_accept(
    core: &mut Core,
    caller: &Caller,
    host: String,
    public: String,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    check_not_operator(core, &public)?;
    check_host_id(&host)?;
    let known = core.access().keys().get(&public);
    if known.is_some_and(|k| {
        k.host == host && k.tenant == caller.tenant && k.state == KeyState::Revoked
    }) {
        return Err(readmit_hint(&host, &public));
    }
    let Some(mut rec) = known.filter(|k| k.state == KeyState::Pending).cloned() else {
        return Err(fault(
            ApiFaultKind::NotFound,
            format!("no pending key {public}"),
        ));
    };
    super::host_calls::host_add(
        core,
        caller,
        &host,
        crate::core::labels::Register::Ensure,
        turn,
    )?;
    rec.host = host;
    rec.tenant = caller.tenant.clone();
    rec.state = KeyState::Accepted;
    store_key(core, turn, caller, rec, AuditAction::KeyAccepted);
    Ok(ApiAnswer::Done)
}

/// `keys readmit HOST KEY`: a revoked key of the host accepted again.
fn key_readmit(
    core: &mut Core,
    caller: &Caller,
    host: String,
    public: String,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    check_not_operator(core, &public)?;
    check_host_id(&host)?;
    check_host(core, caller, &host)?;
    let Some(mut rec) = core
        .access()
        .keys()
        .get(&public)
        .filter(|k| k.host == host && k.tenant == caller.tenant && k.state == KeyState::Revoked)
        .cloned()
    else {
        return Err(fault(
            ApiFaultKind::NotFound,
            format!("no revoked key {public} for host {host}"),
        ));
    };
    super::host_calls::host_add(
        core,
        caller,
        &host,
        crate::core::labels::Register::Ensure,
        turn,
    )?;
    rec.state = KeyState::Accepted;
    store_key(core, turn, caller, rec, AuditAction::KeyReadmitted);
    Ok(ApiAnswer::Done)
}

/// `keys revoke HOST`: every live key of the host revoked, the host cut
/// off at once.
fn key_revoke(
    core: &mut Core,
    caller: &Caller,
    host: String,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    check_host(core, caller, &host)?;
    let live = core.access().live_keys(&caller.tenant, &host);
    if live.is_empty() {
        return Err(fault(
            ApiFaultKind::NotFound,
            format!("no key for host {host}"),
        ));
    }
    for mut rec in live {
        rec.state = KeyState::Revoked;
        store_key(core, turn, caller, rec, AuditAction::KeyRevoked);
    }
    // Cut off now: nothing new is dispatched to it; its queue waits.
    if let Some(h) = core.hosts_mut().get_mut(&host) {
        h.cut_off(turn);
    }
    Ok(ApiAnswer::Done)
}

/// The answer to re-accepting a revoked key without saying so: the way
/// forward, both of them.
fn readmit_hint(host: &str, public: &str) -> ApiFault {
    fault(
        ApiFaultKind::Conflict,
        format!(
            "key {public} was revoked for host {host}: make a new key on the agent \
             (`vigie keys gen`) and accept that one, or re-admit this one with \
             `vigie hosts accept {host} --key {public} --readmit`"
        ),
    )
}
