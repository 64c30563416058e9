//! Provisioning servers into hosts, the referee's half: an operator asks
//! (`Provision`: the servers become `provisioning`, with the init change
//! to queue, stored with its audit record); the provisioner daemon (a
//! tower-internal caller, never an operator) lists the servers waiting,
//! pins a host key seen first, and ends each attempt with `Enrol` or
//! `ProvisionFailed`. An operator may set a server's pin (`Pin`) while it
//! is not a host nor being provisioned: explicit and audited with the key
//! it replaces.
//!
//! Enrolment is one call and so one batch: the host registered with the
//! server's catalog labels, its agent's key accepted, the init change
//! queued as the host's first, the server set to `host`, each audited.
//! Every check is made before the first write, so a refused enrolment
//! leaves nothing half-enrolled.
//!
//! Keys: `provision/<name>` → [`ProvisionRecord`] while a server is being
//! provisioned or after it failed (a retry reuses its init change).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Instant;

use vigie_catalog::servers::normal_address;
use vigie_changes::Selector;
use vigie_wire::catalog::{
    CatalogAnswer, ProvisionOutcome, ProvisionResult, ServerRecord, ServerSpec, ServerState,
};
use vigie_wire::change::ChangeSpec;
use vigie_wire::front::{Grant, KeyRecord, KeyState, Verb};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Labels, Origin};

use crate::core::audit::AuditAction;
use crate::core::catalog::{provision_key, server_key, ProvisionRecord};
use crate::core::catalog_log::CatalogLog;
use crate::core::codec::encode;
use crate::core::fetched::Fetched;
use crate::core::labels::Register;
use crate::core::servers::fault;
use crate::core::state::Tower;
use crate::core::turn::{Log, Turn};

/// Longest failure reason kept (the provisioner's reasons are short; an
/// SSH error's tail is cut).
const MAX_REASON: usize = 1_000;

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

fn tower_only(caller: &Caller) -> Result<(), ApiFault> {
    match caller.origin {
        Origin::Tower => Ok(()),
        Origin::Operator { .. } => Err(fault(
            ApiFaultKind::Forbidden,
            "only the tower's provisioner makes this call",
        )),
    }
}

/// Checks an init change the way its submission at enrolment will be
/// (`submission::check`: shape and every size), so a request that would
/// fail there is refused when asked, before any server is touched.
fn check_init(init: &ChangeSpec, tenant: &str, operator: &str, host: &str) -> Result<(), ApiFault> {
    crate::core::submission::check(init, tenant, operator, &[host.to_owned()]).map(|_| ())
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

impl Tower {
    /// An operator's request: the named servers (or those `target`
    /// matches) become `provisioning`, server by server — each gets its
    /// own result (queued, already a host, already being provisioned,
    /// refused and why), and one that cannot be provisioned never holds
    /// the others back. Refused whole only when the request itself is
    /// wrong (an unknown name, a selector matching nothing, a bad init
    /// change) or when no server at all could be queued.
    pub(crate) fn provision(
        &mut self,
        caller: &Caller,
        (names, target): (Vec<String>, Option<String>),
        init: Option<ChangeSpec>,
        pool: Option<String>,
        turn: &mut Turn,
    ) -> Result<CatalogAnswer, ApiFault> {
        if let Some(i) = &init {
            crate::core::submission::check_shape(i)?;
        }
        let chosen = self.provision_chosen(caller, &names, target.as_deref())?;
        let results = self.provision_outcomes(caller, &chosen, init.as_ref());
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
            self.provision_addresses(caller, pool, &queued, turn)?;
        }
        let at_ms = turn.now_ms;
        let mut retries = 0;
        for n in &queued {
            // A retry without --init keeps the change the first request gave.
            let previous = self.catalog.provisions.get(*n).and_then(|p| p.init.clone());
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
            turn.put(provision_key(n), encode(&rec));
            self.catalog.provisions.insert((*n).clone(), rec);
            if let Some(s) = self.catalog.servers.get_mut(*n) {
                if matches!(s.state, ServerState::Failed { .. }) {
                    retries += 1;
                }
                s.state = ServerState::Provisioning;
                turn.put(server_key(n), encode(&*s));
            }
            turn.logs.push(Log::Catalog(CatalogLog::ServerProvisioning {
                tenant: caller.tenant.clone(),
                server: (*n).clone(),
            }));
        }
        let not = results.len() - queued.len();
        self.audit_provisioning(turn, caller, &queued, retries, not, init.as_ref());
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
        &mut self,
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
        self.audit_host(
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
        &self,
        caller: &Caller,
        names: &[String],
        target: Option<&str>,
    ) -> Result<BTreeSet<String>, ApiFault> {
        let mut chosen: BTreeSet<String> = BTreeSet::new();
        let mut unknown = Vec::new();
        for n in names {
            match self.server(caller, n) {
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
            let matched = self.servers(caller, None, Some(t))?;
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
        &self,
        caller: &Caller,
        chosen: &BTreeSet<String>,
        init: Option<&ChangeSpec>,
    ) -> Vec<(String, Result<(), NotQueued>)> {
        let mut addresses = BTreeSet::new();
        // One pass over the catalog, however many servers are asked for.
        let claimed = self.claimed_addresses();
        let refused = |f: ApiFault| {
            let reason = f.message.trim_end_matches("; nothing done").to_owned();
            (ProvisionOutcome::Refused { reason }, f.kind)
        };
        let conflict =
            |reason: String| (ProvisionOutcome::Refused { reason }, ApiFaultKind::Conflict);
        chosen
            .iter()
            .map(|n| {
                let s = &self.catalog.servers[n];
                let address = normal_address(s.spec.address);
                let other = claimed
                    .get(&address)
                    .is_some_and(|c| c.iter().any(|o| o != n));
                let outcome = match &s.state {
                    ServerState::Host => {
                        Err((ProvisionOutcome::AlreadyHost, ApiFaultKind::Conflict))
                    }
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
                        } else if self.hosts().contains(n) {
                            Err(conflict(format!(
                                "a host of that id exists (remove it first: \
                                 `vigie hosts remove {n}`)"
                            )))
                        } else {
                            self.may_provision(caller, n, init).map_err(refused)
                        }
                    }
                };
                if outcome.is_ok() {
                    addresses.insert(address);
                }
                (n.clone(), outcome)
            })
            .collect()
    }

    /// Provisioning registers the server as a host and accepts its
    /// agent's key: what `hosts.admin` allows, beyond `servers.admin`.
    /// The init change (given, or kept from an earlier request) runs on
    /// the new host as the caller's own change: checked now as its
    /// submission will be, and the caller must be allowed to submit it.
    fn may_provision(
        &self,
        caller: &Caller,
        n: &String,
        init: Option<&ChangeSpec>,
    ) -> Result<(), ApiFault> {
        self.check_may_register(caller, &[n])?;
        let kept = self.catalog.provisions.get(n).and_then(|p| p.init.as_ref());
        if let Some(i) = init.or(kept) {
            check_init(i, &caller.tenant, &caller.operator, n)?;
            self.check_may_submit(caller, &[n])?;
        }
        Ok(())
    }

    /// The addresses servers of any tenant hold, and which servers: a
    /// host (the first successful provisioning claimed the machine) or
    /// one being provisioned.
    fn claimed_addresses(&self) -> HashMap<IpAddr, Vec<&str>> {
        let mut claimed: HashMap<IpAddr, Vec<&str>> = HashMap::new();
        for o in self.catalog.servers.values() {
            if matches!(o.state, ServerState::Host | ServerState::Provisioning) {
                claimed
                    .entry(normal_address(o.spec.address))
                    .or_default()
                    .push(&o.spec.name);
            }
        }
        claimed
    }

    /// Refuses unless the caller's own stored record (not what the front
    /// door let through: `servers.admin`) holds `changes.submit` over
    /// every one of `names`, judged on the server's name and catalog
    /// labels (its future host id and labels). The tower may.
    fn check_may_submit(&self, caller: &Caller, names: &[&String]) -> Result<(), ApiFault> {
        let allowed = crate::core::grants::may_submit_on;
        self.check_own_grant(caller, names, allowed, |who, outside| {
            format!(
                "operator {who} may not give an init change for {outside}: it runs as the \
                 operator's own change and needs changes.submit over those hosts; nothing done"
            )
        })
    }

    /// The same for `hosts.admin`: provisioning registers hosts and
    /// accepts their agents' keys.
    fn check_may_register(&self, caller: &Caller, names: &[&String]) -> Result<(), ApiFault> {
        let allowed = |g: &[Grant], id: &str, l: &Labels| holds_over(g, Verb::HostsAdmin, id, l);
        self.check_own_grant(caller, names, allowed, |who, outside| {
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
        &self,
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
        let Some(me) = self
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
                let labels = &self.catalog.servers[n.as_str()].spec.labels;
                !allowed(&me.grants, n, labels)
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
    pub(crate) fn server_unhosted(&mut self, caller: &Caller, name: &str, turn: &mut Turn) {
        let Some(s) = self
            .catalog
            .servers
            .get_mut(name)
            .filter(|s| s.tenant == caller.tenant && s.state == ServerState::Host)
        else {
            return;
        };
        s.state = ServerState::New;
        s.fresh_key = true;
        turn.put(server_key(name), encode(&*s));
        self.audit_host(
            turn,
            caller,
            name,
            AuditAction::ServerUnhosted,
            format!("server {name} is new again (its host removed): a new provisioning makes its agent a new key"),
        );
    }

    /// Every tenant's servers waiting to be provisioned (the provisioner
    /// resumes them after a restart).
    pub(crate) fn provisioning(&self, caller: &Caller) -> Result<CatalogAnswer, ApiFault> {
        tower_only(caller)?;
        Ok(CatalogAnswer::Servers(
            self.catalog
                .servers
                .values()
                .filter(|s| s.state == ServerState::Provisioning)
                .cloned()
                .collect(),
        ))
    }

    /// The server `name` of the caller's tenant, in `provisioning`.
    fn provisioning_server(&self, caller: &Caller, name: &str) -> Result<ServerRecord, ApiFault> {
        tower_only(caller)?;
        let s = self
            .catalog
            .servers
            .get(name)
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
    pub(crate) fn pin(
        &mut self,
        caller: &Caller,
        name: &str,
        key: String,
        turn: &mut Turn,
    ) -> Result<CatalogAnswer, ApiFault> {
        let mut s = self.server(caller, name)?.clone();
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
        Ok(self.store_host_key(caller, s, AuditAction::HostKeySet, detail, log, turn))
    }

    /// Pins the host key first seen on a server that had none. A key once
    /// pinned is never replaced here: a different one is a conflict.
    pub(crate) fn host_key_seen(
        &mut self,
        caller: &Caller,
        name: &str,
        key: String,
        turn: &mut Turn,
    ) -> Result<CatalogAnswer, ApiFault> {
        let mut s = self.provisioning_server(caller, name)?;
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
        Ok(self.store_host_key(caller, s, AuditAction::HostKeyPinned, detail, log, turn))
    }

    /// A server's new host key in the turn, with its audit record.
    fn store_host_key(
        &mut self,
        caller: &Caller,
        s: ServerRecord,
        action: AuditAction,
        detail: String,
        log: CatalogLog,
        turn: &mut Turn,
    ) -> CatalogAnswer {
        let name = s.spec.name.clone();
        turn.put(server_key(&name), encode(&s));
        self.catalog.servers.insert(name.clone(), s.clone());
        self.audit_host(turn, caller, &name, action, detail);
        turn.logs.push(Log::Catalog(log));
        CatalogAnswer::Servers(vec![s])
    }

    /// The last step of provisioning, whole or not at all.
    pub(crate) fn enrol(
        &mut self,
        caller: &Caller,
        name: &str,
        public: String,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<CatalogAnswer, ApiFault> {
        let s =
            match self.provisioning_server(caller, name) {
                // A retry after a lost answer: the same key, already enrolled.
                Err(_)
                    if self.catalog.servers.get(name).is_some_and(|s| {
                        s.tenant == caller.tenant && s.state == ServerState::Host
                    }) && self
                        .access()
                        .keys()
                        .get(&public)
                        .is_some_and(|k| k.host == name && k.state == KeyState::Accepted) =>
                {
                    return Ok(CatalogAnswer::Servers(vec![
                        self.catalog.servers[name].clone()
                    ]));
                }
                r => r?,
            };
        self.check_enrol_key(name, &public)?;
        let (init, submitter) = self.enrol_checks(caller, &s)?;
        // Every check is done: from here on, writes only.
        let labels = self.labels_with_address(&caller.tenant, name, &s.spec.labels);
        crate::core::handlers::host_calls::host_add(
            self,
            caller,
            name,
            Register::New(labels),
            turn,
        )?;
        let rec = KeyRecord {
            public,
            host: name.to_owned(),
            tenant: caller.tenant.clone(),
            state: KeyState::Accepted,
            address: s.spec.address.to_string(),
        };
        crate::core::handlers::keys::store_key(self, turn, caller, rec, AuditAction::KeyAdded);
        let change = match init {
            Some(spec) => {
                match crate::core::handlers::changes::submit(
                    self, &submitter, spec, name, now, turn,
                )? {
                    ApiAnswer::Submitted(v) => v.first().map(|c| c.id.clone()),
                    _ => None,
                }
            }
            None => None,
        };
        let mut s = s;
        s.state = ServerState::Host;
        s.fresh_key = false;
        turn.put(server_key(name), encode(&s));
        turn.delete(provision_key(name));
        self.catalog.provisions.remove(name);
        self.catalog.servers.insert(name.to_owned(), s.clone());
        self.audit_host(
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
    fn check_enrol_key(&self, name: &str, public: &str) -> Result<(), ApiFault> {
        crate::core::keys::check_public(public)?;
        // The provisioner starts the agent before enrolling it, so its
        // key may have knocked and wait as pending: enrolment accepts it.
        // Any other known key (accepted, revoked, an operator's) is refused.
        if self.access().operators().iter().any(|o| o.public == public)
            || self
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
        if self.hosts().contains(name) {
            return Err(fault(
                ApiFaultKind::Conflict,
                format!("a host {name} exists already: remove it, then provision again"),
            ));
        }
        Ok(())
    }

    /// The caller's tenant's SSH public key, made at its first use.
    pub(crate) fn ssh_key(&self, caller: &Caller, db: &Fetched) -> Result<CatalogAnswer, ApiFault> {
        if self.catalog.ssh_keys.is_none() {
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

    /// An enrolment's checks beyond the server's state and key: the
    /// address not another host's, and the requester's grants again
    /// (`hosts.admin`; `changes.submit` with an init change). Returns the
    /// init change and the caller it is submitted as.
    fn enrol_checks(
        &self,
        caller: &Caller,
        s: &ServerRecord,
    ) -> Result<(Option<ChangeSpec>, Caller), ApiFault> {
        let name = s.spec.name.as_str();
        let address = normal_address(s.spec.address);
        if self.catalog.servers.values().any(|o| {
            o.spec.name != name
                && o.state == ServerState::Host
                && normal_address(o.spec.address) == address
        }) {
            return Err(fault(
                ApiFaultKind::Conflict,
                format!("{name}: its address {address} is another server's in this tower: refused"),
            ));
        }
        let (init, requester, home) = match self.catalog.provisions.get(name) {
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
            self.check_may_register(a, &[&name.to_owned()])?;
        }
        if let Some(i) = &init {
            check_init(i, &caller.tenant, &submitter.operator, name)?;
            if let Some(a) = &as_asked {
                self.check_may_submit(a, &[&name.to_owned()])?;
            }
        }
        Ok((init, submitter))
    }

    pub(crate) fn provision_failed(
        &mut self,
        caller: &Caller,
        name: &str,
        reason: String,
        turn: &mut Turn,
    ) -> Result<CatalogAnswer, ApiFault> {
        let mut s = self.provisioning_server(caller, name)?;
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
        turn.put(server_key(name), encode(&s));
        self.catalog.servers.insert(name.to_owned(), s.clone());
        self.audit_host(
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
}
