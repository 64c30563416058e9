//! How the web daemon reaches the referee: as the tower for its own
//! calls (announce, redeem, authenticate), and as the signed-in operator
//! for everything else — the call's caller made by the majordomo's own
//! [`vigie_majordomo::authorize`] from the operator's current record, so
//! a page or an API call is allowed exactly when the same CLI call is.
//! Calls block (ZeroMQ), so they run on tokio's blocking pool.

use std::time::Duration;

use vigie_client::{ApiClient, ClientError};
use vigie_wire::front::OperatorRecord;
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind, Caller, ChangeView, IdemKey};

/// How long one call waits for the referee.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one round of following a change lasts.
const FOLLOW_ROUND: Duration = Duration::from_secs(20);

/// The tower's identity for the web daemon's own calls.
const WEB: &str = "web";

#[derive(Debug, Clone)]
pub struct Referee {
    pub api: String,
    pub orders: String,
}

/// A refusal or a failure to ask, as the operator reads it.
pub fn fault_of(e: ClientError) -> ApiFault {
    match e {
        ClientError::Refused(f) => f,
        ClientError::Timeout { .. } => ApiFault::new(
            ApiFaultKind::Unavailable,
            "the tower did not answer in time",
        ),
        other => ApiFault::new(ApiFaultKind::Unavailable, other.to_string()),
    }
}

impl Referee {
    fn client(&self, caller: Caller) -> Result<ApiClient, ApiFault> {
        let mut c = ApiClient::direct(&self.api, &self.orders, caller).map_err(fault_of)?;
        c.set_timeout(CALL_TIMEOUT);
        Ok(c)
    }

    async fn blocking<T: Send + 'static>(
        f: impl FnOnce() -> Result<T, ApiFault> + Send + 'static,
    ) -> Result<T, ApiFault> {
        tokio::task::spawn_blocking(f)
            .await
            .unwrap_or_else(|e| Err(ApiFault::new(ApiFaultKind::Unavailable, e.to_string())))
    }

    /// A call of the web daemon itself (`Origin::Tower`).
    pub async fn as_tower(&self, call: ApiCall) -> Result<ApiAnswer, ApiFault> {
        let me = self.clone();
        Self::blocking(move || {
            let caller = Caller::internal(vigie_wire::ids::TOWER_TENANT, WEB);
            me.client(caller)?.call(call).map_err(fault_of)
        })
        .await
    }

    /// The caller `op` makes `call` as, or the door's refusal.
    fn caller_of(op: &OperatorRecord, call: &ApiCall) -> Result<Caller, ApiFault> {
        vigie_majordomo::authorize(op, call, None).map_err(|msg| {
            tracing::warn!(event = "web_forbidden", operator = %op.name, reason = %msg);
            ApiFault::new(ApiFaultKind::Forbidden, msg)
        })
    }

    /// `call` made as operator `op`, with the caller's idempotency key
    /// when it gave one (a fresh one otherwise, as the CLI does).
    pub async fn as_operator(
        &self,
        op: &OperatorRecord,
        call: ApiCall,
        idem: Option<IdemKey>,
    ) -> Result<ApiAnswer, ApiFault> {
        let caller = Self::caller_of(op, &call)?;
        let me = self.clone();
        Self::blocking(move || {
            let mut c = me.client(caller)?;
            match idem {
                Some(k) => c.call_idempotent(call, &k),
                None => c.call(call),
            }
            .map_err(fault_of)
        })
        .await
    }

    /// A typed call (`vigie_client::calls`) made as operator `op`: its
    /// own answer, or the refusal.
    pub async fn ask<C: vigie_client::Call + Send + 'static>(
        &self,
        op: &OperatorRecord,
        call: C,
    ) -> Result<C::Answer, ApiFault> {
        let answer = self.as_operator(op, call.into(), None).await?;
        C::answer(answer).map_err(|_| {
            ApiFault::new(
                ApiFaultKind::Unavailable,
                "unexpected answer from the tower",
            )
        })
    }

    /// Whether `op` may make `call` (the door's own answer): what shows an
    /// action's button. The referee still decides when it is pressed.
    pub fn may(op: &OperatorRecord, call: &ApiCall) -> bool {
        vigie_majordomo::authorize(op, call, None).is_ok()
    }

    /// Follows one change as `op`, sending every new view to `tx` until
    /// it is final, the receiver is gone, or the referee refuses (the same
    /// `Status` check the CLI's `watch` passes).
    pub fn follow(
        &self,
        op: &OperatorRecord,
        change: String,
        tx: tokio::sync::mpsc::Sender<ChangeView>,
    ) -> Result<(), ApiFault> {
        let status = ApiCall::Status {
            change: Some(change.clone()),
            limit: 1,
        };
        let caller = Self::caller_of(op, &status)?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let Ok(mut c) = me.client(caller) else {
                return;
            };
            // In rounds, so a reader gone (the page closed) frees the
            // thread within a round even while the change waits.
            while !tx.is_closed() {
                let r = c.follow(std::slice::from_ref(&change), Some(FOLLOW_ROUND), |_, v| {
                    let _ = tx.blocking_send(v.clone());
                });
                match r {
                    Err(vigie_client::ClientError::NotFinal { .. }) => continue,
                    Ok(_) => return,
                    Err(e) => {
                        tracing::debug!(event = "web_follow_ended", error = %e);
                        return;
                    }
                }
            }
        });
        Ok(())
    }
}
