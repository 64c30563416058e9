//! Provisioning servers into hosts, the provisioner's half (see
//! `provision.rs` for the operator's request): the provisioner daemon (a
//! tower-internal caller, never an operator) lists the servers waiting,
//! pins a host key seen first, learns the addresses pools gave a server
//! (`ServerAddresses`, to put them on it), and ends each attempt with
//! `Enrol` or `ProvisionFailed`. An operator may set a server's pin (`Pin`) while it
//! is not a host nor being provisioned: explicit and audited with the key
//! it replaces.
//!
//! Enrolment is one call and so one batch: the host registered with the
//! server's catalog labels, its agent's key accepted, the init change
//! queued as the host's first, the server set to `host`, each audited.
//! Every check is made before the first write, so a refused enrolment
//! leaves nothing half-enrolled.

use std::time::Instant;

use vigie_catalog::servers::normal_address;
use vigie_wire::catalog::{CatalogAnswer, ServerRecord, ServerSpec, ServerState};
use vigie_wire::change::ChangeSpec;
use vigie_wire::front::{KeyRecord, KeyState};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Origin};

use super::provision::{check_init, check_may_register, check_may_submit};
use crate::core::audit::AuditAction;
use crate::core::catalog::{fault, Catalog};
use crate::core::catalog_log::CatalogLog;
use crate::core::labels::Register;
use crate::core::state::Core;
use crate::core::turn::{Log, Turn};

/// Longest failure reason kept (the provisioner's reasons are short; an
/// SSH error's tail is cut).
const MAX_REASON: usize = 1_000;

fn tower_only(caller: &Caller) -> Result<(), ApiFault> {
    match caller.origin {
        Origin::Tower => Ok(()),
        Origin::Operator { .. } => Err(fault(
            ApiFaultKind::Forbidden,
            "only the tower's provisioner makes this call",
        )),
    }
}

/// A host key as the catalog would take it in a CSV (an OpenSSH public
/// key or a `SHA256:` fingerprint), trimmed.
fn checked_host_key(spec: &ServerSpec, key: String) -> Result<String, ApiFault> {
    let key = key.trim().to_owned();
    let mut check = spec.clone();
    check.host_key = Some(key.clone());
    match vigie_catalog::servers::check_server(&check)
        .into_iter()
        .find(|(c, _)| *c == "host_key")
    {
        Some((_, m)) => Err(fault(ApiFaultKind::Invalid, format!("host key: {m}"))),
        None => Ok(key),
    }
}

/// Every tenant's servers waiting to be provisioned (the provisioner
/// resumes them after a restart).
pub fn provisioning(catalog: &Catalog, caller: &Caller) -> Result<CatalogAnswer, ApiFault> {
    tower_only(caller)?;
    Ok(CatalogAnswer::Servers(catalog.provisioning()))
}

/// The addresses pools gave server `name` of the caller's tenant: the
/// provisioner puts them on the server before setting it up.
pub fn server_addresses(
    catalog: &Catalog,
    caller: &Caller,
    name: &str,
) -> Result<CatalogAnswer, ApiFault> {
    tower_only(caller)?;
    super::servers::server(catalog, caller, name)?;
    Ok(CatalogAnswer::Given(
        catalog.given_addresses(&caller.tenant, name),
    ))
}

/// The server `name` of the caller's tenant, in `provisioning`.
fn provisioning_server(core: &Core, caller: &Caller, name: &str) -> Result<ServerRecord, ApiFault> {
    tower_only(caller)?;
    let s = core
        .catalog()
        .server_named(name)
        .filter(|s| s.tenant == caller.tenant)
        .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no server {name}")))?;
    if s.state != ServerState::Provisioning {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!("server {name} is {}, not provisioning", s.state.word()),
        ));
    }
    Ok(s.clone())
}

/// An operator's explicit pin: the host key a server must offer.
pub fn pin(
    core: &mut Core,
    caller: &Caller,
    name: &str,
    key: String,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    let mut s = super::servers::server(core.catalog(), caller, name)?.clone();
    match s.state {
        ServerState::Host => {
            return Err(fault(
                ApiFaultKind::Conflict,
                format!("{name} is a host: its host key stays the one it was provisioned with"),
            ))
        }
        ServerState::Provisioning => {
            return Err(fault(
                ApiFaultKind::Conflict,
                format!("{name} is being provisioned: pin it once that ends"),
            ))
        }
        ServerState::New | ServerState::Failed { .. } => {}
    }
    let key = checked_host_key(&s.spec, key)?;
    let old = s.spec.host_key.replace(key.clone());
    let detail = format!(
        "server {name}: host key {} replaced by {key}",
        old.as_deref().unwrap_or("(none)")
    );
    let log = CatalogLog::HostKeySet {
        tenant: caller.tenant.clone(),
        server: name.to_owned(),
    };
    Ok(store_host_key(
        core,
        caller,
        s,
        AuditAction::HostKeySet,
        detail,
        log,
        turn,
    ))
}

/// Pins the host key first seen on a server that had none. A key once
/// pinned is never replaced here: a different one is a conflict.
pub fn host_key_seen(
    core: &mut Core,
    caller: &Caller,
    name: &str,
    key: String,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    let mut s = provisioning_server(core, caller, name)?;
    let key = checked_host_key(&s.spec, key)?;
    match &s.spec.host_key {
        Some(k) if *k == key => return Ok(CatalogAnswer::Servers(vec![s])),
        Some(k) => {
            return Err(fault(
                ApiFaultKind::Conflict,
                format!("server {name} has host key {k} pinned: it is never replaced"),
            ))
        }
        None => {}
    }
    s.spec.host_key = Some(key.clone());
    let detail = format!("server {name}: host key first seen and pinned: {key}");
    let log = CatalogLog::HostKeyPinned {
        tenant: caller.tenant.clone(),
        server: name.to_owned(),
    };
    Ok(store_host_key(
        core,
        caller,
        s,
        AuditAction::HostKeyPinned,
        detail,
        log,
        turn,
    ))
}

/// A server's new host key in the turn, with its audit record.
fn store_host_key(
    core: &mut Core,
    caller: &Caller,
    s: ServerRecord,
    action: AuditAction,
    detail: String,
    log: CatalogLog,
    turn: &mut Turn,
) -> CatalogAnswer {
    let name = s.spec.name.clone();
    core.catalog_mut().put_server(turn, s.clone());
    core.audit_host(turn, caller, &name, action, detail);
    turn.logs.push(Log::Catalog(log));
    CatalogAnswer::Servers(vec![s])
}

/// The last step of provisioning, whole or not at all.
pub fn enrol(
    core: &mut Core,
    caller: &Caller,
    name: &str,
    public: String,
    now: Instant,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    let s = match provisioning_server(core, caller, name) {
        // A retry after a lost answer: the same key, already enrolled.
        Err(_)
            if core
                .catalog()
                .server_named(name)
                .is_some_and(|s| s.tenant == caller.tenant && s.state == ServerState::Host)
                && core
                    .access()
                    .keys()
                    .get(&public)
                    .is_some_and(|k| k.host == name && k.state == KeyState::Accepted) =>
        {
            let s = core.catalog().server_named(name).cloned();
            return Ok(CatalogAnswer::Servers(s.into_iter().collect()));
        }
        r => r?,
    };
    check_enrol_key(core, name, &public)?;
    let (init, submitter) = enrol_checks(core, caller, &s)?;
    // Every check is done: from here on, writes only.
    let labels = core
        .catalog()
        .labels_with_address(&caller.tenant, name, &s.spec.labels);
    super::host_calls::host_add(core, caller, name, Register::New(labels), turn)?;
    let rec = KeyRecord {
        public,
        host: name.to_owned(),
        tenant: caller.tenant.clone(),
        state: KeyState::Accepted,
        address: s.spec.address.to_string(),
    };
    super::keys::store_key(core, turn, caller, rec, AuditAction::KeyAdded);
    let change = match init {
        Some(spec) => match super::changes::submit(core, &submitter, spec, name, now, turn)? {
            ApiAnswer::Submitted(v) => v.first().map(|c| c.id.clone()),
            _ => None,
        },
        None => None,
    };
    let mut s = s;
    s.state = ServerState::Host;
    s.fresh_key = false;
    core.catalog_mut().put_server(turn, s.clone());
    core.catalog_mut().remove_provision(turn, name);
    core.audit_host(
        turn,
        caller,
        name,
        AuditAction::ServerEnrolled,
        format!(
            "server {name} is a host; first change {}",
            change.as_deref().unwrap_or("(none)")
        ),
    );
    turn.logs.push(Log::Catalog(CatalogLog::ServerEnrolled {
        tenant: caller.tenant.clone(),
        server: name.to_owned(),
        change: change.unwrap_or_default(),
    }));
    Ok(CatalogAnswer::Servers(vec![s]))
}

/// The agent key is new (or waits as pending) and no host has the
/// server's name yet.
fn check_enrol_key(core: &Core, name: &str, public: &str) -> Result<(), ApiFault> {
    crate::core::keys::check_public(public)?;
    // The provisioner starts the agent before enrolling it, so its
    // key may have knocked and wait as pending: enrolment accepts it.
    // Any other known key (accepted, revoked, an operator's) is refused.
    if core.access().operators().iter().any(|o| o.public == public)
        || core
            .access()
            .keys()
            .get(public)
            .is_some_and(|k| k.state != KeyState::Pending)
    {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!("the agent key of {name} is already known to this tower: make a new one"),
        ));
    }
    if core.hosts().contains(name) {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!("a host {name} exists already: remove it, then provision again"),
        ));
    }
    Ok(())
}

/// An enrolment's checks beyond the server's state and key: the
/// address not another host's, and the requester's grants again
/// (`hosts.admin`; `changes.submit` with an init change). Returns the
/// init change and the caller it is submitted as.
fn enrol_checks(
    core: &Core,
    caller: &Caller,
    s: &ServerRecord,
) -> Result<(Option<ChangeSpec>, Caller), ApiFault> {
    let name = s.spec.name.as_str();
    let address = normal_address(s.spec.address);
    if core.catalog().address_hosted_by_other(name, address) {
        return Err(fault(
            ApiFaultKind::Conflict,
            format!("{name}: its address {address} is another server's in this tower: refused"),
        ));
    }
    let (init, requester, home) = match core.catalog().provision(name) {
        Some(p) => (p.init.clone(), p.operator.clone(), p.home.clone()),
        None => (None, caller.operator.clone(), None),
    };
    // The init change is the requesting operator's (checked for
    // `changes.submit` when asked, and again now: it may have been
    // revoked since), so the audit says who.
    let submitter = Caller {
        operator: requester,
        ..caller.clone()
    };
    // So are its `hosts.admin` (the host registered, its key
    // accepted) and, with an init change, its `changes.submit`.
    let as_asked = home.map(|home| Caller {
        origin: Origin::Operator { home },
        ..submitter.clone()
    });
    if let Some(a) = &as_asked {
        check_may_register(core, a, &[&name.to_owned()])?;
    }
    if let Some(i) = &init {
        check_init(i, &caller.tenant, &submitter.operator, name)?;
        if let Some(a) = &as_asked {
            check_may_submit(core, a, &[&name.to_owned()])?;
        }
    }
    Ok((init, submitter))
}

pub fn provision_failed(
    core: &mut Core,
    caller: &Caller,
    name: &str,
    reason: String,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    let mut s = provisioning_server(core, caller, name)?;
    let mut reason = reason.trim().to_owned();
    if reason.len() > MAX_REASON {
        let mut cut = MAX_REASON;
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        reason.truncate(cut);
        reason.push('…');
    }
    s.state = ServerState::Failed {
        reason: reason.clone(),
    };
    core.catalog_mut().put_server(turn, s.clone());
    core.audit_host(
        turn,
        caller,
        name,
        AuditAction::ProvisionFailed,
        format!("server {name}: {reason}"),
    );
    turn.logs.push(Log::Catalog(CatalogLog::ProvisionFailed {
        tenant: caller.tenant.clone(),
        server: name.to_owned(),
        reason,
    }));
    Ok(CatalogAnswer::Servers(vec![s]))
}
