//! The operator's calls. Every call is scoped to the caller's tenant: a
//! host, change or audit record of another tenant does not exist for them.

use std::sync::Arc;
use std::time::Instant;

use vigie_changes::Selector;
use vigie_wire::change::ChangeSpec;
use vigie_wire::tower::{
    ApiAnswer, ApiCall, ApiFault, ApiFaultKind, AuditRecord, Caller, ChangeState, ChangeView,
    HostView, Labels, StepView, Waiting,
};

use crate::core::audit::AuditAction;
use crate::core::audit::{self, verify_chain, AuditChain};
use crate::core::audit_query::AuditQuery;
use crate::core::codec::decode;
use crate::core::fetched::Fetched;
use crate::core::keys::KeyCall;
use crate::core::labels::{show, Register};
use crate::core::model::{change_id, change_key, spec_key, ChangeRecord};
use crate::core::operators::OperatorCall;
use crate::core::scope::Visible;
use crate::core::state::{HostState, Tower};
use crate::core::submission::MAX_SUBMIT_HOSTS;
use crate::core::turn::{Log, Turn};

/// What every change of one submission shares.
#[derive(Clone, Copy)]
struct Queued<'a> {
    spec: &'a ChangeSpec,
    steps: &'a [StepView],
    spec_id: &'a str,
    /// A bound on one change record's size (`Turn::dirty_change`).
    record: usize,
}

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
        db: &Fetched,
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
            } => Ok(self.latest_views(caller, limit)),
            ApiCall::StatusOf { changes } => self.status_of(caller, &changes, db),
            ApiCall::Queue { host } => self.queue(caller, &host),
            ApiCall::Cancel { change } => self.cancel(caller, &change, db, turn),
            c @ ApiCall::Audit { .. } => self.audit_list(caller, c, db),
            ApiCall::Page { call, page } => {
                let whole = self.whole_list(caller, *call, db, now, turn)?;
                crate::core::paging::page(whole, &page)
            }
            ApiCall::AuditVerify => self.audit_verify(caller, db),
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
            c @ (ApiCall::KeyReadmit { .. }
            | ApiCall::Keys
            | ApiCall::KeysPending { .. }
            | ApiCall::KeyAdd { .. }
            | ApiCall::KeyAccept { .. }
            | ApiCall::KeyRevoke { .. }) => self.key_api(caller, c, turn),
            c @ (ApiCall::Operators
            | ApiCall::OperatorAdd { .. }
            | ApiCall::OperatorRotateKey { .. }
            | ApiCall::OperatorRevoke { .. }
            | ApiCall::OperatorGrant { .. }
            | ApiCall::OperatorUngrant { .. }) => self.operator_api(caller, c, turn),
            ApiCall::Deploy(call) => self.deploy_call(caller, call, db, turn),
            ApiCall::Catalog(vigie_wire::catalog::CatalogCall::AppRemove { name, version }) => self
                .app_remove(caller, &name, &version, db, turn)
                .map(ApiAnswer::Catalog),
            ApiCall::Catalog(c) => self.catalog_call(caller, c, db, now, turn),
            ApiCall::HostMetrics { host } => self.host_metrics(caller, host, now),
            // Answered later, by the server loop (`observe.rs`).
            ApiCall::Logs(_) => Err(ApiFault::new(
                ApiFaultKind::Invalid,
                "a logs call is answered by the referee's loop",
            )),
            ApiCall::TowerStatus => {
                let vis = Visible::of(caller);
                self.health().status(|id| {
                    self.hosts
                        .get(id)
                        .is_some_and(|host| vis.host(&host.rec.tenant, id, &host.rec.labels))
                })
            }
            ApiCall::Web(w) => self.web_call(caller, w, db, turn),
            ApiCall::Secrets(c) => self.secrets_call(caller, c, db, turn),
            ApiCall::Hosts => Ok(self.hosts_view(caller, turn.now_ms)),
        }
    }

    /// The caller's latest changes (`status` without an id).
    fn latest_views(&self, caller: &Caller, limit: u32) -> ApiAnswer {
        ApiAnswer::Changes(
            self.latest(caller, limit)
                .into_iter()
                .map(|v| self.with_waiting(v))
                .collect(),
        )
    }

    /// `audit`: the records a query picks, at most `MAX_LIST`, from the
    /// newest pages of the chain `fetch.rs` read for it.
    fn audit_list(
        &self,
        caller: &Caller,
        call: ApiCall,
        db: &Fetched,
    ) -> Result<ApiAnswer, ApiFault> {
        let query = AuditQuery::of(&call)
            .ok_or_else(|| fault(ApiFaultKind::Invalid, "not an audit call"))?;
        let read = db.pages(audit::PREFIX).map_err(storage)?;
        let records = crate::core::audit_read::decode_all(read)?;
        Ok(ApiAnswer::Audit(
            self.audit_records(caller, &query, records),
        ))
    }

    /// The whole chain checked against its head; the count is the
    /// caller's tenant's records only.
    fn audit_verify(&self, caller: &Caller, db: &Fetched) -> Result<ApiAnswer, ApiFault> {
        let head = match db.get(audit::HEAD_KEY).map_err(storage)? {
            Some(v) => AuditChain::decode_head(v)
                .ok_or_else(|| fault(ApiFaultKind::Tampered, "the audit head is unreadable"))?,
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

    /// The hosts of the caller's tenant and scope.
    fn hosts_view(&self, caller: &Caller, now_ms: u64) -> ApiAnswer {
        let vis = Visible::of(caller);
        ApiAnswer::Hosts(
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
                    queued: u32::try_from(self.queues.len_of(&h.rec.id)).unwrap_or(u32::MAX),
                    in_flight: self
                        .queues
                        .head(&h.rec.id)
                        .filter(|id| {
                            self.queues
                                .change(id)
                                .is_some_and(|c| c.view.state != ChangeState::Queued)
                        })
                        .cloned(),
                    held: h.rec.held,
                    plug_down: (!h.online)
                        .then(|| self.health().plug_down(&h.rec.id, now_ms))
                        .flatten(),
                })
                .collect(),
        )
    }

    /// The key registry's calls.
    fn key_api(
        &mut self,
        caller: &Caller,
        call: ApiCall,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        let call = match call {
            ApiCall::KeyReadmit { host, public } => KeyCall::Readmit { host, public },
            ApiCall::Keys => KeyCall::List,
            ApiCall::KeysPending { knocks, dropped } => KeyCall::Pending { knocks, dropped },
            ApiCall::KeyAdd { host, public } => KeyCall::Add { host, public },
            ApiCall::KeyAccept { host, public } => KeyCall::Accept { host, public },
            ApiCall::KeyRevoke { host } => KeyCall::Revoke { host },
            _ => return Err(fault(ApiFaultKind::Invalid, "not a key call")),
        };
        self.key_call(caller, call, turn)
    }

    /// The operators' calls.
    fn operator_api(
        &mut self,
        caller: &Caller,
        call: ApiCall,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        let call = match call {
            ApiCall::Operators => OperatorCall::List,
            ApiCall::OperatorAdd {
                name,
                public,
                grants,
            } => OperatorCall::Add {
                name,
                public,
                grants,
            },
            ApiCall::OperatorRotateKey { name, public } => OperatorCall::RotateKey { name, public },
            ApiCall::OperatorRevoke { name } => OperatorCall::Revoke { name },
            ApiCall::OperatorGrant { name, grant } => OperatorCall::Regrant {
                name,
                grant,
                give: true,
            },
            ApiCall::OperatorUngrant { name, grant } => OperatorCall::Regrant {
                name,
                grant,
                give: false,
            },
            _ => return Err(fault(ApiFaultKind::Invalid, "not an operator call")),
        };
        self.operator_call(caller, call, turn)
    }

    /// A list call's whole answer, for [`crate::core::paging`] to cut (the
    /// unpaged calls keep their own limits).
    fn whole_list(
        &mut self,
        caller: &Caller,
        call: ApiCall,
        db: &Fetched,
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
                Ok(ApiAnswer::Audit(self.audit_records(
                    caller,
                    &query,
                    read_audit(db)?,
                )))
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
        records: Vec<AuditRecord>,
    ) -> Vec<AuditRecord> {
        crate::core::audit_read::Sight::of(self, caller).answer(query, records)
    }

    pub(crate) fn submit(
        &mut self,
        caller: &Caller,
        spec: ChangeSpec,
        target: &str,
        now: Instant,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        crate::core::submission::check_shape(&spec)?;
        let matched = self.submit_targets(caller, target)?;
        let spec = self.seal_secrets(caller, spec, &matched)?;
        let crate::core::submission::Sized {
            steps,
            spec_bytes,
            record,
        } = crate::core::submission::check(&spec, &caller.tenant, &caller.operator, &matched)?;
        self.check_changes_share(&caller.tenant, matched.len())?;
        // One copy of the program for the whole submission.
        let spec_id = change_id(self.queues.next_seq());
        let program = crate::core::queues::Program {
            spec: Arc::new(spec.clone()),
            users: matched.len(),
            bytes: spec_bytes.len(),
        };
        turn.put(spec_key(&spec_id), spec_bytes);
        self.queues.add_program(spec_id.clone(), program);
        let mut views = Vec::with_capacity(matched.len());
        let queued = Queued {
            spec: &spec,
            steps: &steps,
            spec_id: &spec_id,
            record,
        };
        for host in matched {
            let view = self.enqueue(caller, &host, &queued, turn);
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

    /// The hosts of the caller's tenant a submission's target names, all
    /// inside the caller's scope and at most `MAX_SUBMIT_HOSTS`.
    fn submit_targets(&self, caller: &Caller, target: &str) -> Result<Vec<String>, ApiFault> {
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
        Ok(matched)
    }

    /// One change of a submission queued on `host`, audited `submitted`.
    fn enqueue(
        &mut self,
        caller: &Caller,
        host: &str,
        program: &Queued,
        turn: &mut Turn,
    ) -> ChangeView {
        let Queued {
            spec,
            steps,
            spec_id,
            record,
        } = *program;
        let seq = self.queues.take_seq();
        let id = change_id(seq);
        let view = ChangeView {
            id: id.clone(),
            host: host.to_owned(),
            seq,
            tenant: caller.tenant.clone(),
            operator: caller.operator.clone(),
            title: spec.title.clone(),
            state: ChangeState::Queued,
            steps: steps.to_vec(),
            submitted_ms: turn.now_ms,
            updated_ms: turn.now_ms,
            waiting: None,
        };
        self.audit(turn, &view, None, AuditAction::Submitted, None);
        turn.logs.push(Log::ChangeQueued {
            change: id.clone(),
            host: host.to_owned(),
            seq,
            tenant: view.tenant.clone(),
        });
        turn.dirty_change(&id, record);
        let rec = ChangeRecord {
            view: view.clone(),
            accepted: false,
            spec_id: spec_id.to_owned(),
        };
        self.queues.enqueue(rec, turn);
        view
    }

    /// A queued change's view, saying what it waits for: its host offline
    /// or held, or changes ahead of it.
    /// `Status` of each of `changes`, in one answer (a fault if any one
    /// is not the caller's to read).
    fn status_of(
        &self,
        caller: &Caller,
        changes: &[vigie_wire::tower::ChangeId],
        db: &Fetched,
    ) -> Result<ApiAnswer, ApiFault> {
        let max = vigie_wire::limits::MAX_STATUS_OF;
        if changes.len() > max {
            return Err(fault(
                ApiFaultKind::Invalid,
                format!("at most {max} changes in one status call"),
            ));
        }
        changes
            .iter()
            .map(|id| Ok(self.with_waiting(self.find(caller, id, db)?)))
            .collect::<Result<_, ApiFault>>()
            .map(ApiAnswer::Changes)
    }

    pub(crate) fn with_waiting(&self, mut v: ChangeView) -> ChangeView {
        v.waiting = None;
        if v.state != ChangeState::Queued {
            return v;
        }
        let Some(h) = self.hosts.get(&v.host) else {
            return v;
        };
        let ahead = self.queues.ahead(&v.host, v.seq);
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
        db: &Fetched,
    ) -> Result<ChangeView, ApiFault> {
        let view = if let Some(rec) = self.queues.change(id) {
            Some(rec.view.clone())
        } else if let Some(v) = self.queues.recent().iter().rev().find(|v| v.id == id) {
            Some(v.clone())
        } else {
            let key = change_key(id);
            match db.get(&key).map_err(storage)? {
                Some(bytes) => Some(decode::<ChangeRecord>(&key, bytes).map_err(storage)?.view),
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
            .queues
            .changes()
            .map(|c| c.view.clone())
            .chain(self.queues.recent().iter().cloned())
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
        let v = self
            .queues
            .queue(&h.rec.id)
            .filter_map(|(_, id)| self.queues.change(id))
            .map(|c| self.with_waiting(c.view.clone()))
            .collect();
        Ok(ApiAnswer::Changes(v))
    }

    fn cancel(
        &mut self,
        caller: &Caller,
        id: &str,
        db: &Fetched,
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
        self.audit_host(turn, caller, host, AuditAction::HostRegistered, summary);
        Ok(ApiAnswer::Done)
    }
}

/// Every audit record, in sequence order.
pub(crate) fn read_audit(db: &Fetched) -> Result<Vec<AuditRecord>, ApiFault> {
    db.scan(audit::PREFIX)
        .map_err(storage)?
        .iter()
        .map(|(key, value)| {
            decode::<AuditRecord>(key, value)
                .map_err(|err| fault(ApiFaultKind::Tampered, err.to_string()))
        })
        .collect()
}
