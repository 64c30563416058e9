//! Provisioning servers into hosts, the operator's half: a request
//! (`Provision`: the servers become `provisioning`, with the init change
//! to queue, stored with its audit record), checked against the caller's
//! own grants; a removed host's server made new again; the tenant's SSH
//! key. The provisioner's half (its list, host keys, `Enrol`,
//! `ProvisionFailed`) and an operator's `Pin` are in `enrol.rs`.
//!
//! Keys: `provision/<name>` → [`ProvisionRecord`] while a server is being
//! provisioned or after it failed (a retry reuses its init change).

use std::collections::BTreeSet;

use vigie_catalog::servers::normal_address;
use vigie_changes::Selector;
use vigie_wire::catalog::{CatalogAnswer, ProvisionOutcome, ProvisionResult, ServerState};
use vigie_wire::change::ChangeSpec;
use vigie_wire::front::{Grant, Verb};
use vigie_wire::tower::{ApiFault, ApiFaultKind, Caller, Labels, Origin};

use crate::core::audit::AuditAction;
use crate::core::catalog::{fault, Catalog, ProvisionRecord};
use crate::core::catalog_log::CatalogLog;
use crate::core::fetched::Fetched;
use crate::core::state::Core;
use crate::core::turn::{Log, Turn};

/// Whether `held` has a grant of `verb` whose scope (a selector) matches
/// a host `id` with these labels.
fn holds_over(held: &[Grant], verb: Verb, id: &str, labels: &Labels) -> bool {
    held.iter().any(|g| {
        g.verb == verb
            && vigie_changes::GrantScope::parse(&g.scope).is_ok_and(|s| s.matches_host(id, labels))
    })
}

/// Why a server of a request is not queued, and the fault's kind were it
/// the only one.
type NotQueued = (ProvisionOutcome, ApiFaultKind);

/// The refusal of a request none of whose servers could be queued: each
/// server's reason, once; its kind the reasons' own when they share one.
fn nothing_queued(results: &[(String, Result<(), NotQueued>)]) -> ApiFault {
    let mut problems = Vec::new();
    let mut kinds = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().err().map(|e| e.1));
    let first = kinds.next();
    let kind = match first {
        Some(k) if kinds.all(|o| o == k) => k,
        _ => ApiFaultKind::Conflict,
    };
    for (n, r) in results {
        let Err((o, _)) = r else { continue };
        problems.push(match o {
            ProvisionOutcome::AlreadyHost => format!("{n} is already a host"),
            ProvisionOutcome::AlreadyProvisioning => format!("{n} is already being provisioned"),
            ProvisionOutcome::Refused { reason } => format!("{n}: {reason}"),
            ProvisionOutcome::Queued => continue,
        });
    }
    let n = problems.len();
    problems.truncate(50);
    fault(
        kind,
        format!(
            "{n} server(s) cannot be provisioned, nothing done:\n  {}",
            problems.join("\n  ")
        ),
    )
}

/// Checks an init change the way its submission at enrolment will be
/// (`submission::check`: shape and every size), so a request that would
/// fail there is refused when asked, before any server is touched.
pub(super) fn check_init(
    init: &ChangeSpec,
    tenant: &str,
    operator: &str,
    host: &str,
) -> Result<(), ApiFault> {
    crate::core::submission::check(init, tenant, operator, &[host.to_owned()]).map(|_| ())
}

/// An operator's request: the named servers (or those `target`
/// matches) become `provisioning`, server by server — each gets its
/// own result (queued, already a host, already being provisioned,
/// refused and why), and one that cannot be provisioned never holds
/// the others back. Refused whole only when the request itself is
/// wrong (an unknown name, a selector matching nothing, a bad init
/// change) or when no server at all could be queued.
pub fn provision(
    core: &mut Core,
    caller: &Caller,
    (names, target): (Vec<String>, Option<String>),
    init: Option<ChangeSpec>,
    pool: Option<String>,
    turn: &mut Turn,
) -> Result<CatalogAnswer, ApiFault> {
    // Accepted, the servers would wait `provisioning` in silence.
    core.health()
        .needs_daemon("provisioner", "provisioning", turn.now_ms)?;
    if let Some(i) = &init {
        crate::core::submission::check_shape(i)?;
    }
    let chosen = provision_chosen(core, caller, &names, target.as_deref())?;
    let results = provision_outcomes(core, caller, &chosen, init.as_ref());
    let queued: Vec<&String> = results
        .iter()
        .filter(|(_, r)| r.is_ok())
        .map(|(n, _)| n)
        .collect();
    if queued.is_empty() {
        return Err(nothing_queued(&results));
    }
    if let Some(pool) = &pool {
        let queued: Vec<String> = queued.iter().map(|n| (*n).clone()).collect();
        super::provision_pool::provision_addresses(core, caller, pool, &queued, turn)?;
    }
    let at_ms = turn.now_ms;
    let mut retries = 0;
    for n in &queued {
        // A retry without --init keeps the change the first request gave.
        let previous = core.catalog().provision(n).and_then(|p| p.init.clone());
        let rec = ProvisionRecord {
            name: (*n).clone(),
            operator: caller.operator.clone(),
            at_ms,
            init: init.clone().or(previous),
            home: match &caller.origin {
                Origin::Tower => None,
                Origin::Operator { home } => Some(home.clone()),
            },
        };
        core.catalog_mut().put_provision(turn, rec);
        if let Some(mut s) = core.catalog().server_named(n).cloned() {
            if matches!(s.state, ServerState::Failed { .. }) {
                retries += 1;
            }
            s.state = ServerState::Provisioning;
            core.catalog_mut().put_server(turn, s);
        }
        turn.logs.push(Log::Catalog(CatalogLog::ServerProvisioning {
            tenant: caller.tenant.clone(),
            server: (*n).clone(),
        }));
    }
    let not = results.len() - queued.len();
    audit_provisioning(core, turn, caller, &queued, retries, not, init.as_ref());
    Ok(CatalogAnswer::Provisioned(
        results
            .into_iter()
            .map(|(name, r)| ProvisionResult {
                name,
                outcome: match r {
                    Ok(()) => ProvisionOutcome::Queued,
                    Err((o, _)) => o,
                },
            })
            .collect(),
    ))
}

/// The one audit record of a provisioning request.
fn audit_provisioning(
    core: &mut Core,
    turn: &mut Turn,
    caller: &Caller,
    queued: &[&String],
    retries: usize,
    not: usize,
    init: Option<&ChangeSpec>,
) {
    let listed: Vec<&str> = queued.iter().take(20).map(|n| n.as_str()).collect();
    let more = queued.len().saturating_sub(listed.len());
    let title = init.map_or("(kept or none)", |i| i.title.as_str());
    core.audit_host(
        turn,
        caller,
        "",
        AuditAction::ServersProvisioning,
        format!(
            "{} server(s) to provision ({retries} retried, {not} not queued), init change \
             {title:?}: {}{}",
            queued.len(),
            listed.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ),
    );
}

/// The servers a request names or its selector matches, each once.
fn provision_chosen(
    core: &Core,
    caller: &Caller,
    names: &[String],
    target: Option<&str>,
) -> Result<BTreeSet<String>, ApiFault> {
    let mut chosen: BTreeSet<String> = BTreeSet::new();
    let mut unknown = Vec::new();
    for n in names {
        match super::servers::server(core.catalog(), caller, n) {
            Ok(_) => {
                chosen.insert(n.clone());
            }
            Err(_) => unknown.push(n.as_str()),
        }
    }
    if !unknown.is_empty() {
        return Err(fault(
            ApiFaultKind::NotFound,
            format!("no server(s) {} in the catalog", unknown.join(", ")),
        ));
    }
    if let Some(t) = target {
        Selector::parse(t).map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
        let matched = super::servers::servers(core.catalog(), caller, None, Some(t))?;
        if matched.is_empty() {
            return Err(fault(
                ApiFaultKind::NotFound,
                format!("target {t:?} matches no server"),
            ));
        }
        chosen.extend(matched.into_iter().map(|s| s.spec.name));
    }
    if chosen.is_empty() {
        return Err(fault(
            ApiFaultKind::Invalid,
            "name the servers to provision, or a --target",
        ));
    }
    if chosen.len() > vigie_catalog::servers::MAX_ROWS {
        return Err(fault(
            ApiFaultKind::Invalid,
            format!(
                "{} servers: at most {} per request",
                chosen.len(),
                vigie_catalog::servers::MAX_ROWS
            ),
        ));
    }
    Ok(chosen)
}

/// Each chosen server's fate: `Ok` to queue, or the one outcome that
/// keeps it out (its first problem: a server is counted once).
fn provision_outcomes(
    core: &Core,
    caller: &Caller,
    chosen: &BTreeSet<String>,
    init: Option<&ChangeSpec>,
) -> Vec<(String, Result<(), NotQueued>)> {
    let mut addresses = BTreeSet::new();
    // One pass over the catalog, however many servers are asked for.
    let claimed = core.catalog().claimed_addresses();
    let refused = |f: ApiFault| {
        let reason = f.message.trim_end_matches("; nothing done").to_owned();
        (ProvisionOutcome::Refused { reason }, f.kind)
    };
    let conflict = |reason: String| (ProvisionOutcome::Refused { reason }, ApiFaultKind::Conflict);
    chosen
        .iter()
        .filter_map(|n| {
            // Chosen among the catalog's servers: each is there.
            let s = core.catalog().server_named(n)?;
            let address = normal_address(s.spec.address);
            let other = claimed
                .get(&address)
                .is_some_and(|c| c.iter().any(|o| o != n));
            let outcome = match &s.state {
                ServerState::Host => Err((ProvisionOutcome::AlreadyHost, ApiFaultKind::Conflict)),
                ServerState::Provisioning => Err((
                    ProvisionOutcome::AlreadyProvisioning,
                    ApiFaultKind::Conflict,
                )),
                ServerState::New | ServerState::Failed { .. } => {
                    if other || addresses.contains(&address) {
                        // Which server, and so which tenant, holds it is not said.
                        Err(conflict(format!(
                            "its address {address} is another server's in this tower \
                             (provisioned or being provisioned)"
                        )))
                    } else if core.hosts().contains(n) {
                        Err(conflict(format!(
                            "a host of that id exists (remove it first: \
                             `vigie hosts remove {n}`)"
                        )))
                    } else {
                        may_provision(core, caller, n, init).map_err(refused)
                    }
                }
            };
            if outcome.is_ok() {
                addresses.insert(address);
            }
            Some((n.clone(), outcome))
        })
        .collect()
}

/// Provisioning registers the server as a host and accepts its
/// agent's key: what `hosts.admin` allows, beyond `servers.admin`.
/// The init change (given, or kept from an earlier request) runs on
/// the new host as the caller's own change: checked now as its
/// submission will be, and the caller must be allowed to submit it.
fn may_provision(
    core: &Core,
    caller: &Caller,
    n: &String,
    init: Option<&ChangeSpec>,
) -> Result<(), ApiFault> {
    check_may_register(core, caller, &[n])?;
    let kept = core.catalog().provision(n).and_then(|p| p.init.as_ref());
    if let Some(i) = init.or(kept) {
        check_init(i, &caller.tenant, &caller.operator, n)?;
        check_may_submit(core, caller, &[n])?;
    }
    Ok(())
}

/// Refuses unless the caller's own stored record (not what the front
/// door let through: `servers.admin`) holds `changes.submit` over
/// every one of `names`, judged on the server's name and catalog
/// labels (its future host id and labels). The tower may.
pub(super) fn check_may_submit(
    core: &Core,
    caller: &Caller,
    names: &[&String],
) -> Result<(), ApiFault> {
    let allowed = crate::core::grants::may_submit_on;
    check_own_grant(core, caller, names, allowed, |who, outside| {
        format!(
            "operator {who} may not give an init change for {outside}: it runs as the \
             operator's own change and needs changes.submit over those hosts; nothing done"
        )
    })
}

/// The same for `hosts.admin`: provisioning registers hosts and
/// accepts their agents' keys.
pub(super) fn check_may_register(
    core: &Core,
    caller: &Caller,
    names: &[&String],
) -> Result<(), ApiFault> {
    let allowed = |g: &[Grant], id: &str, l: &Labels| holds_over(g, Verb::HostsAdmin, id, l);
    check_own_grant(core, caller, names, allowed, |who, outside| {
        format!(
            "operator {who} may not provision {outside}: provisioning registers hosts \
             and accepts their agents' keys, which needs hosts.admin over them; nothing done"
        )
    })
}

/// Refuses, with `refusal(operator, names outside)`, unless the
/// caller's own record's grants are `allowed` over every server of
/// `names` (its name and catalog labels). The tower may.
fn check_own_grant(
    core: &Core,
    caller: &Caller,
    names: &[&String],
    allowed: impl Fn(&[Grant], &str, &Labels) -> bool,
    refusal: impl Fn(&str, &str) -> String,
) -> Result<(), ApiFault> {
    let Origin::Operator { home } = &caller.origin else {
        return Ok(());
    };
    if names.is_empty() {
        return Ok(());
    }
    let Some(me) = core
        .access()
        .operators()
        .iter()
        .find(|o| o.tenant == *home && o.name == caller.operator && !o.revoked)
    else {
        return Err(fault(
            ApiFaultKind::Forbidden,
            format!("operator {} is not active", caller.operator),
        ));
    };
    let outside: Vec<&str> = names
        .iter()
        .filter(|n| {
            let labels = core.catalog().server_named(n).map(|s| &s.spec.labels);
            !labels.is_some_and(|l| allowed(&me.grants, n, l))
        })
        .map(|n| n.as_str())
        .take(20)
        .collect();
    if outside.is_empty() {
        return Ok(());
    }
    Err(fault(
        ApiFaultKind::Forbidden,
        refusal(&caller.operator, &outside.join(", ")),
    ))
}

/// After `hosts remove`: the catalog server of that name (same tenant)
/// that had become the host is `new` again, to be provisioned anew
/// with a fresh agent key (the old one is revoked), in the removal's
/// batch, audited.
pub fn server_unhosted(core: &mut Core, caller: &Caller, name: &str, turn: &mut Turn) {
    let Some(mut s) = core
        .catalog()
        .server_named(name)
        .filter(|s| s.tenant == caller.tenant && s.state == ServerState::Host)
        .cloned()
    else {
        return;
    };
    s.state = ServerState::New;
    s.fresh_key = true;
    core.catalog_mut().put_server(turn, s);
    core.audit_host(
        turn,
        caller,
        name,
        AuditAction::ServerUnhosted,
        format!("server {name} is new again (its host removed): a new provisioning makes its agent a new key"),
    );
}

/// The caller's tenant's SSH public key, made at its first use.
pub fn ssh_key(
    catalog: &Catalog,
    caller: &Caller,
    db: &Fetched,
) -> Result<CatalogAnswer, ApiFault> {
    if catalog.ssh_keys().is_none() {
        return Err(fault(
            ApiFaultKind::Unavailable,
            "this referee was started without a key dir (--ssh-keys): it gives no SSH key",
        ));
    }
    // Read (made at its first use) by the shell before the call.
    match db.ssh_key(&caller.tenant) {
        Ok(k) => Ok(CatalogAnswer::SshKey(k.to_owned())),
        Err(e) => {
            tracing::error!(event = "ssh_key_failed", tenant = %caller.tenant, error = %e);
            Err(fault(
                ApiFaultKind::Unavailable,
                "the tower could not make this tenant's SSH key (its log says why)",
            ))
        }
    }
}
