//! The client: one call at a time, each waiting for its answer (resent
//! while unanswered when that is harmless), and changes followed to
//! their end.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use vigie_wire::tower::{ApiAnswer, ApiCall, ChangeView, IdemKey};

use vigie_wire::tower::Caller;

use crate::calls::{Call, StatusOf};
use crate::link::{Direct, Incoming, Link};
use crate::ClientError;

/// An unanswered call is sent again after this long.
const RESEND_AFTER: Duration = Duration::from_secs(5);

/// A fresh idempotency key: 128 random bits in hex.
pub fn new_idem_key() -> IdemKey {
    let text = format!("{:032x}", rand::random::<u128>());
    // 32 hex digits always make a valid key.
    IdemKey::try_from(text).unwrap_or_else(|_| unreachable!("hex is a valid key"))
}

pub struct ApiClient {
    link: Box<dyn Link>,
    next_id: u64,
    /// How long a call that only reads waits for its answer.
    timeout: Duration,
    /// How long a call that changes something waits (resent meanwhile).
    change_timeout: Duration,
    /// Updates that arrived while waiting for a reply.
    updates: VecDeque<ChangeView>,
}

impl ApiClient {
    /// A client inside the tower, straight to the referee.
    pub fn direct(api: &str, orders: &str, caller: Caller) -> Result<Self, ClientError> {
        Ok(Self::over(Direct::connect(api, orders, caller)?))
    }

    pub fn over(link: impl Link + 'static) -> Self {
        Self {
            link: Box::new(link),
            next_id: 1,
            timeout: Duration::from_secs(30),
            change_timeout: Duration::from_secs(30),
            updates: VecDeque::new(),
        }
    }

    /// The same wait for every call.
    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
        self.change_timeout = t;
    }

    /// The read and change timeouts.
    pub fn timeouts(&self) -> (Duration, Duration) {
        (self.timeout, self.change_timeout)
    }

    /// A wait for reads and a longer one for calls that change something:
    /// those are resent every few seconds while unanswered, so a short
    /// read timeout still tells quickly that the tower is down.
    pub fn set_timeouts(&mut self, read: Duration, change: Duration) {
        self.timeout = read;
        self.change_timeout = change;
    }

    /// One call, waiting for its answer. A call that changes things
    /// carries a fresh idempotency key, so it is resent while unanswered
    /// (a lost reply, a restarting tower) without acting twice.
    pub fn call(&mut self, call: ApiCall) -> Result<ApiAnswer, ClientError> {
        let key = call.mutates().then(new_idem_key);
        self.call_with(call, false, key.as_ref())
    }

    /// A call with the caller's own idempotency key: the same key again
    /// gets the first answer.
    pub fn call_idempotent(
        &mut self,
        call: ApiCall,
        key: &IdemKey,
    ) -> Result<ApiAnswer, ClientError> {
        self.call_with(call, false, Some(key))
    }

    /// A typed call: its answer, or an error (an answer of another type
    /// included).
    pub fn ask<C: Call>(&mut self, call: C) -> Result<C::Answer, ClientError> {
        typed::<C>(self.call(call.into())?)
    }

    /// A typed call with the caller's own idempotency key.
    pub fn ask_idempotent<C: Call>(
        &mut self,
        call: C,
        key: &IdemKey,
    ) -> Result<C::Answer, ClientError> {
        typed::<C>(self.call_idempotent(call.into(), key)?)
    }

    fn call_watching(&mut self, call: ApiCall, watch: bool) -> Result<ApiAnswer, ClientError> {
        self.call_with(call, watch, None)
    }

    fn call_with(
        &mut self,
        call: ApiCall,
        watch: bool,
        idem: Option<&IdemKey>,
    ) -> Result<ApiAnswer, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        self.link.send(id, &call, watch, idem)?;
        let timeout = if call.mutates() {
            self.change_timeout
        } else {
            self.timeout
        };
        let deadline = Instant::now() + timeout;
        let mut resend = Instant::now() + RESEND_AFTER;
        loop {
            let now = Instant::now();
            let left = deadline.saturating_duration_since(now);
            if left.is_zero() {
                return Err(ClientError::Timeout {
                    endpoint: self.link.endpoint().to_owned(),
                    after: timeout,
                });
            }
            // Reads are harmless twice; changes only with their key.
            if now >= resend && (idem.is_some() || !call.mutates()) {
                self.link.send(id, &call, watch, idem)?;
                resend = now + RESEND_AFTER;
            }
            let wait = left.min(
                resend
                    .saturating_duration_since(now)
                    .max(Duration::from_millis(1)),
            );
            match self.link.recv(wait)? {
                Some(Incoming::Reply(r)) if r.id == id => return Ok(r.body?),
                Some(Incoming::Update(v)) => self.updates.push_back(v),
                Some(Incoming::Reply(_)) | None => {}
            }
        }
    }

    /// The next watched update, or `None` after `timeout`.
    fn next_update(&mut self, timeout: Duration) -> Result<Option<ChangeView>, ClientError> {
        if let Some(v) = self.updates.pop_front() {
            return Ok(Some(v));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match self.link.recv(left)? {
                Some(Incoming::Update(v)) => return Ok(Some(v)),
                Some(Incoming::Reply(_)) => {}
                None => return Ok(None),
            }
        }
    }

    /// Follows `ids` until every one is final: reads their current state
    /// while asking for their updates, then applies the updates the
    /// referee publishes. After a quiet second it reads the open ones again:
    /// an update published before the subscription took effect is not lost.
    /// An update older than what was read never replaces a final state.
    /// `on_view(previous, new)` sees every new view. Fails after `timeout`.
    pub fn follow(
        &mut self,
        ids: &[String],
        timeout: Option<Duration>,
        mut on_view: impl FnMut(Option<&ChangeView>, &ChangeView),
    ) -> Result<Vec<ChangeView>, ClientError> {
        let started = Instant::now();
        let mut views: HashMap<String, ChangeView> = HashMap::new();
        let mut take = |v: ChangeView, views: &mut HashMap<String, ChangeView>| {
            let old = views.get(&v.id);
            if old.is_some_and(|o| o.state.is_final()) || old == Some(&v) {
                return;
            }
            on_view(old, &v);
            views.insert(v.id.clone(), v);
        };
        let open = |views: &HashMap<String, ChangeView>| -> Vec<String> {
            ids.iter()
                .filter(|id| !views.get(*id).is_some_and(|v| v.state.is_final()))
                .cloned()
                .collect()
        };
        loop {
            // One call (and one watch) for every open change, not one each.
            for chunk in open(&views).chunks(vigie_wire::limits::MAX_STATUS_OF) {
                let status = StatusOf {
                    changes: chunk.to_vec(),
                };
                let got = typed::<StatusOf>(self.call_watching(status.into(), true)?)?;
                for v in got {
                    take(v, &mut views);
                }
            }
            let quiet_until = |now: Instant| now + Duration::from_secs(1);
            let mut quiet = quiet_until(Instant::now());
            loop {
                let left = open(&views);
                if left.is_empty() {
                    return Ok(ids.iter().filter_map(|id| views.remove(id)).collect());
                }
                if let Some(t) = timeout.filter(|t| started.elapsed() >= *t) {
                    let open: Vec<String> = left
                        .iter()
                        .take(20)
                        .map(|id| {
                            format!(
                                "{id} ({})",
                                views.get(id).map_or("unknown", |v| v.state.word())
                            )
                        })
                        .collect();
                    return Err(ClientError::NotFinal {
                        after: t,
                        count: left.len(),
                        open: open.join(", "),
                    });
                }
                let now = Instant::now();
                if now >= quiet {
                    break;
                }
                if let Some(v) = self.next_update(quiet - now)? {
                    take(v, &mut views);
                    quiet = quiet_until(Instant::now());
                }
            }
        }
    }

    pub fn changes(&mut self, call: ApiCall) -> Result<Vec<ChangeView>, ClientError> {
        match self.call(call)? {
            ApiAnswer::Changes(v) | ApiAnswer::Submitted(v) => Ok(v),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }
}

/// `answer` as `C`'s, or the error saying whose it was instead.
fn typed<C: Call>(answer: ApiAnswer) -> Result<C::Answer, ClientError> {
    C::answer(answer).map_err(|other| {
        let call = std::any::type_name::<C>()
            .rsplit("::")
            .next()
            .unwrap_or("a call");
        ClientError::Unexpected(format!("to {call}: {other:?}"))
    })
}
