//! The operator's calls. Every call is scoped to the caller's tenant: a
//! host, change or audit record of another tenant does not exist for them.

use std::sync::Arc;
use std::time::Instant;

use vigie_changes::Selector;
use vigie_escalator::{Database, RangeSpec};
use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{
    ApiAnswer, ApiCall, ApiFault, ApiFaultKind, AuditRecord, Caller, ChangeState, ChangeView,
    HostView, Labels, Origin, Waiting,
};

use crate::audit::{self, verify_chain, AuditChain};
use crate::audit_query::AuditQuery;
use crate::keys::KeyCall;
use crate::labels::Register;
use crate::model::{change_id, change_key, queue_key, spec_key, ChangeRecord};
use crate::operators::OperatorCall;
use crate::scope::Visible;
use crate::tower::{decode, now_ms, HostState, Tower};
use crate::turn::{Log, Turn};

/// Most hosts one submission may target: one turn stores them all.
pub const MAX_SUBMIT_HOSTS: usize = 5_000;
/// Most entries one answer lists.
pub const MAX_LIST: u32 = 1_000;

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

fn storage(e: impl std::fmt::Display) -> ApiFault {
    fault(ApiFaultKind::Storage, e.to_string())
}

impl Tower {
    pub fn api(
        &mut self,
        caller: &Caller,
        call: ApiCall,
        db: &Database,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        match call {
            ApiCall::Submit { spec, target } => self.submit(caller, spec, &target, now, turn),
            ApiCall::Status {
                change: Some(id), ..
            } => Ok(ApiAnswer::Changes(vec![
                self.with_waiting(self.find(caller, &id, db)?)
            ])),
            ApiCall::Status {
                change: None,
                limit,
            } => Ok(ApiAnswer::Changes(
                self.latest(caller, limit)
                    .into_iter()
                    .map(|v| self.with_waiting(v))
                    .collect(),
            )),
            ApiCall::Queue { host } => self.queue(caller, &host),
            ApiCall::Cancel { change } => self.cancel(caller, &change, db, turn),
            ApiCall::Audit {
                host,
                change,
                limit,
                filter,
            } => {
                let query = AuditQuery {
                    host,
                    change,
                    filter: *filter,
                    limit: limit.min(MAX_LIST) as usize,
                };
                Ok(ApiAnswer::Audit(self.audit_records(caller, &query, db)?))
            }
            ApiCall::Page { call, page } => {
                let whole = self.whole_list(caller, *call, db, now, turn)?;
                crate::paging::page(whole, &page)
            }
            ApiCall::AuditVerify => {
                let head = match db.get(audit::HEAD_KEY).map_err(storage)? {
                    Some(v) => AuditChain::decode_head(&v).ok_or_else(|| {
                        fault(ApiFaultKind::Tampered, "the audit head is unreadable")
                    })?,
                    None => AuditChain::default(),
                };
                let all = read_audit(db)?;
                // The whole chain is checked; the count is the caller's
                // tenant's records only (the chain holds every tenant's).
                let mine = all.iter().filter(|r| r.tenant == caller.tenant).count();
                let at = verify_chain(all, &head).map_err(|e| fault(ApiFaultKind::Tampered, e))?;
                Ok(ApiAnswer::AuditVerified {
                    records: mine as u64,
                    head: at.last_hash,
                })
            }
            ApiCall::HostAdd { host, labels } => {
                self.host_add(caller, &host, Register::New(labels), turn)
            }
            ApiCall::HostLabel { host, set, remove } => {
                self.host_label(caller, &host, set, remove, turn)
            }
            ApiCall::HostRemove { host, force } => self.host_remove(caller, &host, force, turn),
            ApiCall::HostRelease { host } => self.host_release(caller, &host, now, turn),
            ApiCall::Abandon { change, hold } => self.abandon(caller, &change, hold, db, now, turn),
            ApiCall::Retry { change } => self.retry(caller, &change, db, now, turn),
            ApiCall::KeyReadmit { host, public } => {
                self.key_call(caller, KeyCall::Readmit { host, public }, turn)
            }
            ApiCall::Keys => self.key_call(caller, KeyCall::List, turn),
            ApiCall::KeysPending { knocks, dropped } => {
                self.key_call(caller, KeyCall::Pending { knocks, dropped }, turn)
            }
            ApiCall::KeyAdd { host, public } => {
                self.key_call(caller, KeyCall::Add { host, public }, turn)
            }
            ApiCall::KeyAccept { host, public } => {
                self.key_call(caller, KeyCall::Accept { host, public }, turn)
            }
            ApiCall::KeyRevoke { host } => self.key_call(caller, KeyCall::Revoke { host }, turn),
            ApiCall::Operators => self.operator_call(caller, OperatorCall::List, turn),
            ApiCall::OperatorAdd {
                name,
                public,
                grants,
            } => self.operator_call(
                caller,
                OperatorCall::Add {
                    name,
                    public,
                    grants,
                },
                turn,
            ),
            ApiCall::OperatorRotateKey { name, public } => {
                self.operator_call(caller, OperatorCall::RotateKey { name, public }, turn)
            }
            ApiCall::OperatorRevoke { name } => {
                self.operator_call(caller, OperatorCall::Revoke { name }, turn)
            }
            ApiCall::OperatorGrant { name, grant } => self.operator_call(
                caller,
                OperatorCall::Regrant {
                    name,
                    grant,
                    give: true,
                },
                turn,
            ),
            ApiCall::OperatorUngrant { name, grant } => self.operator_call(
                caller,
                OperatorCall::Regrant {
                    name,
                    grant,
                    give: false,
                },
                turn,
            ),
            ApiCall::Deploy(call) => self.deploy_call(caller, call, db, turn),
            ApiCall::Catalog(c) => self.catalog_call(caller, c, now, turn),
            ApiCall::HostMetrics { host } => self.host_metrics(caller, host, now),
            // Answered later, by the server loop (`observe.rs`).
            ApiCall::Logs(_) => Err(ApiFault::new(
                ApiFaultKind::Invalid,
                "a logs call is answered by the referee's loop",
            )),
            ApiCall::TowerStatus => self.tower_status(caller),
            ApiCall::Web(w) => self.web_call(caller, w, db, turn),
            ApiCall::Hosts => {
                let vis = Visible::of(caller);
                Ok(ApiAnswer::Hosts(
                    self.hosts
                        .values()
                        .filter(|h| vis.host(&h.rec.tenant, &h.rec.id, &h.rec.labels))
                        .map(|h| HostView {
                            id: h.rec.id.clone(),
                            tenant: h.rec.tenant.clone(),
                            labels: h.rec.labels.clone(),
                            reported: h.reported.clone(),
                            online: h.online,
                            refusing: h.refusing.clone(),
                            queued: u32::try_from(h.queue.len()).unwrap_or(u32::MAX),
                            in_flight: h
                                .queue
                                .values()
                                .next()
                                .filter(|id| {
                                    self.changes
                                        .get(*id)
                                        .is_some_and(|c| c.view.state != ChangeState::Queued)
                                })
                                .cloned(),
                            held: h.rec.held,
                            plug_down: (!h.online).then(|| self.plug_down(&h.rec.id)).flatten(),
                        })
                        .collect(),
                ))
            }
        }
    }

    /// A list call's whole answer, for [`crate::paging`] to cut (the
    /// unpaged calls keep their own limits).
    fn whole_list(
        &mut self,
        caller: &Caller,
        call: ApiCall,
        db: &Database,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        use vigie_wire::catalog::CatalogCall as C;
        match call {
            ApiCall::Status { change: None, .. } => Ok(ApiAnswer::Changes(
                self.latest(caller, u32::MAX)
                    .into_iter()
                    .map(|v| self.with_waiting(v))
                    .collect(),
            )),
            ApiCall::Audit {
                host,
                change,
                filter,
                ..
            } => {
                let query = AuditQuery {
                    host,
                    change,
                    filter: *filter,
                    limit: usize::MAX,
                };
                Ok(ApiAnswer::Audit(self.audit_records(caller, &query, db)?))
            }
            c @ (ApiCall::Hosts
            | ApiCall::Keys
            | ApiCall::Operators
            | ApiCall::Queue { .. }
            | ApiCall::HostMetrics { host: None }
            | ApiCall::Deploy(vigie_wire::deploy::DeployCall::List)
            | ApiCall::Catalog(
                C::Sessions | C::Servers { .. } | C::Pools | C::Allocations { .. } | C::Apps,
            )) => self.api(caller, c, db, now, turn),
            _ => Err(fault(ApiFaultKind::Invalid, "only a list call is paged")),
        }
    }

    /// The audit records a query picks, within the caller's tenant and
    /// scope.
    fn audit_records(
        &self,
        caller: &Caller,
        query: &AuditQuery,
        db: &Database,
    ) -> Result<Vec<vigie_wire::tower::AuditRecord>, ApiFault> {
        let vis = Visible::of(caller);
        let mine = read_audit(db)?
            .into_iter()
            .filter(|r| r.tenant == caller.tenant)
            .filter(|r| self.record_visible(&vis, &r.host));
        let mut v = query.select(mine);
        if caller.origin != Origin::Tower {
            // The chain's own numbers count every tenant's records.
            for r in &mut v {
                r.seq = 0;
            }
        }
        Ok(v)
    }

    pub(crate) fn submit(
        &mut self,
        caller: &Caller,
        spec: ChangeSpec,
        target: &str,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        crate::submission::check_shape(&spec)?;
        let selector =
            Selector::parse(target).map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
        let mine = |h: &&HostState| h.rec.tenant == caller.tenant;
        if let Some(ids) = selector.exact_ids() {
            let unknown: Vec<&str> = ids
                .iter()
                .filter(|id| !self.hosts.get(*id).is_some_and(|h| mine(&h)))
                .map(String::as_str)
                .collect();
            if !unknown.is_empty() {
                return Err(fault(
                    ApiFaultKind::NotFound,
                    format!("unknown host(s): {}", unknown.join(", ")),
                ));
            }
        }
        let matched: Vec<String> = self
            .hosts
            .values()
            .filter(mine)
            .filter(|h| selector.matches(&h.rec.id, &h.rec.labels))
            .map(|h| h.rec.id.clone())
            .collect();
        if matched.is_empty() {
            return Err(fault(
                ApiFaultKind::NotFound,
                format!("target {target:?} matches no host"),
            ));
        }
        let vis = Visible::of(caller);
        let outside: Vec<&str> = matched
            .iter()
            .filter(|h| !self.host_visible(&vis, h))
            .map(String::as_str)
            .take(20)
            .collect();
        if !outside.is_empty() {
            return Err(fault(
                ApiFaultKind::Forbidden,
                format!(
                    "operator {} may not submit to: {}",
                    caller.operator,
                    outside.join(", ")
                ),
            ));
        }
        if matched.len() > MAX_SUBMIT_HOSTS {
            return Err(fault(
                ApiFaultKind::Invalid,
                format!(
                    "target {target:?} matches {} hosts: at most {MAX_SUBMIT_HOSTS} per submission",
                    matched.len()
                ),
            ));
        }
        let crate::submission::Sized {
            steps,
            spec_bytes,
            record,
        } = crate::submission::check(&spec, &caller.tenant, &caller.operator, &matched)?;
        self.check_changes_share(&caller.tenant, matched.len())?;
        // One copy of the program for the whole submission.
        let spec_id = change_id(self.next_seq);
        let program = crate::tower::Program {
            spec: Arc::new(spec.clone()),
            users: matched.len(),
            bytes: spec_bytes.len(),
        };
        turn.put(spec_key(&spec_id), spec_bytes);
        self.specs.insert(spec_id.clone(), program);
        let mut views = Vec::with_capacity(matched.len());
        for host in matched {
            let seq = self.next_seq;
            self.next_seq += 1;
            let id = change_id(seq);
            let view = ChangeView {
                id: id.clone(),
                host: host.clone(),
                seq,
                tenant: caller.tenant.clone(),
                operator: caller.operator.clone(),
                title: spec.title.clone(),
                state: ChangeState::Queued,
                steps: steps.clone(),
                submitted_ms: now_ms(),
                updated_ms: now_ms(),
                waiting: None,
            };
            turn.put(queue_key(&host, seq), id.clone().into_bytes());
            if let Some(h) = self.hosts.get_mut(&host) {
                h.queue.insert(seq, id.clone());
            }
            self.busy.insert(host.clone());
            self.audit(turn, &view, None, "submitted", None);
            turn.logs.push(Log::ChangeQueued {
                change: id.clone(),
                host: host.clone(),
                seq,
                tenant: view.tenant.clone(),
            });
            turn.dirty_change(&id, record);
            self.changes.insert(
                id,
                ChangeRecord {
                    view: view.clone(),
                    accepted: false,
                    spec_id: spec_id.clone(),
                },
            );
            views.push((host, view));
        }
        self.persist_next_seq(turn);
        for (host, _) in &views {
            self.pump(host, now, turn);
        }
        Ok(ApiAnswer::Submitted(
            views
                .into_iter()
                .map(|(_, v)| self.with_waiting(v))
                .collect(),
        ))
    }

    /// A queued change's view, saying what it waits for: its host offline
    /// or held, or changes ahead of it.
    pub(crate) fn with_waiting(&self, mut v: ChangeView) -> ChangeView {
        v.waiting = None;
        if v.state != ChangeState::Queued {
            return v;
        }
        let Some(h) = self.hosts.get(&v.host) else {
            return v;
        };
        let ahead = h.queue.range(..v.seq).count();
        v.waiting = Some(if h.rec.held {
            Waiting::HostHeld
        } else if !h.online {
            Waiting::HostOffline
        } else {
            Waiting::Behind {
                ahead: u32::try_from(ahead).unwrap_or(u32::MAX),
            }
        });
        if matches!(v.waiting, Some(Waiting::Behind { ahead: 0 })) {
            // Next in line on an online host: about to be dispatched.
            v.waiting = None;
        }
        v
    }

    /// A change of the caller's tenant, wherever it lives now.
    pub(crate) fn find(
        &self,
        caller: &Caller,
        id: &str,
        db: &Database,
    ) -> Result<ChangeView, ApiFault> {
        let view = if let Some(rec) = self.changes.get(id) {
            Some(rec.view.clone())
        } else if let Some(v) = self.recent.iter().rev().find(|v| v.id == id) {
            Some(v.clone())
        } else {
            let key = change_key(id);
            match db.get(&key).map_err(storage)? {
                Some(bytes) => Some(decode::<ChangeRecord>(&key, &bytes).map_err(storage)?.view),
                None => None,
            }
        };
        let view = view
            .filter(|v| v.tenant == caller.tenant)
            .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no change {id}")))?;
        self.check_host(caller, &view.host)?;
        Ok(view)
    }

    /// The caller's changes still in progress and the most recently
    /// finished ones, oldest first, at most `limit`.
    fn latest(&self, caller: &Caller, limit: u32) -> Vec<ChangeView> {
        let mut v: Vec<ChangeView> = self
            .changes
            .values()
            .map(|c| c.view.clone())
            .chain(self.recent.iter().cloned())
            .filter(|v| v.tenant == caller.tenant)
            .collect();
        let vis = Visible::of(caller);
        v.retain(|c| self.host_visible(&vis, &c.host));
        v.sort_by_key(|v| v.seq);
        let skip = v.len().saturating_sub(limit as usize);
        v.drain(..skip);
        v
    }

    fn queue(&self, caller: &Caller, host: &str) -> Result<ApiAnswer, ApiFault> {
        let h = self
            .hosts
            .get(host)
            .filter(|h| h.rec.tenant == caller.tenant)
            .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no host {host}")))?;
        self.check_host(caller, host)?;
        let v = h
            .queue
            .values()
            .filter_map(|id| self.changes.get(id))
            .map(|c| self.with_waiting(c.view.clone()))
            .collect();
        Ok(ApiAnswer::Changes(v))
    }

    fn cancel(
        &mut self,
        caller: &Caller,
        id: &str,
        db: &Database,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        let view = self.find(caller, id, db)?;
        if view.state != ChangeState::Queued {
            let hint = if view.state.is_final() {
                String::new()
            } else {
                format!("; if its host is lost for good, `vigie abandon {id}`")
            };
            return Err(fault(
                ApiFaultKind::Conflict,
                format!(
                    "change {id} is {}: only a queued change can be cancelled{hint}",
                    view.state.word()
                ),
            ));
        }
        let why = format!("cancelled by {} while queued", caller.operator);
        let view = self
            .end_change(caller, id, ChangeState::Cancelled, why, turn)
            .ok_or_else(|| fault(ApiFaultKind::NotFound, format!("no change {id}")))?;
        Ok(ApiAnswer::Changes(vec![view]))
    }

    /// Registers a host in the caller's tenant (see [`Register`] for an
    /// id that exists). A host id belongs to one tenant for good.
    pub(crate) fn host_add(
        &mut self,
        caller: &Caller,
        host: &str,
        how: Register,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        vigie_changes::validate_host_id(host)
            .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
        if self
            .hosts
            .get(host)
            .is_some_and(|h| h.rec.tenant != caller.tenant)
        {
            // Host ids route orders, so they are unique in the tower; the
            // answer does not say which tenant has it.
            return Err(fault(
                ApiFaultKind::Conflict,
                format!("host id {host} cannot be registered: choose another id"),
            ));
        }
        self.check_host(caller, host)?;
        let exists = self.hosts.contains_key(host);
        if !exists {
            self.check_hosts_share(&caller.tenant)?;
        }
        match how {
            Register::Ensure if exists => Ok(ApiAnswer::Done),
            Register::New(_) if exists => Err(fault(
                ApiFaultKind::Conflict,
                format!(
                    "host {host} exists: its labels change with `vigie hosts label {host} k=v`"
                ),
            )),
            Register::Setup(labels) if exists => self.set_labels(caller, host, labels, turn),
            Register::New(labels) | Register::Setup(labels) => {
                self.register(caller, host, labels, turn)
            }
            Register::Ensure => self.register(caller, host, Labels::new(), turn),
        }
    }

    fn register(
        &mut self,
        caller: &Caller,
        host: &str,
        labels: Labels,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        self.new_host(&caller.tenant, host, labels, turn);
        let labels = self
            .hosts
            .get(host)
            .map(|h| show(&h.rec.labels))
            .unwrap_or_default();
        let summary = format!("host {host} registered [{labels}]");
        self.audit_host(turn, caller, host, "host_registered", summary);
        Ok(ApiAnswer::Done)
    }
}

/// Labels as `k=v,k=v` for audit summaries.
pub(crate) fn show(labels: &Labels) -> String {
    let text: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    text.join(",")
}

/// Every audit record, in sequence order.
pub(crate) fn read_audit(db: &Database) -> Result<Vec<AuditRecord>, ApiFault> {
    let spec = RangeSpec {
        prefix: Some(audit::PREFIX.to_vec()),
        ..RangeSpec::default()
    };
    db.iter(spec)
        .map(|e| {
            let e = e.map_err(storage)?;
            decode::<AuditRecord>(&e.key, &e.value.unwrap_or_default())
                .map_err(|err| fault(ApiFaultKind::Tampered, err.to_string()))
        })
        .collect()
}
