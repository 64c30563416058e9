//! The hosts the tower knows, [`Hosts`]: each one's stored record and
//! what its plug said last (labels it reports, when it was heard,
//! whether it is online or refusing orders). Only this sub-state
//! changes a host's liveness; queues live in `queues.rs`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vigie_wire::tower::{host_topic, HostId, Labels, Published};

use crate::core::codec::encode;
use crate::core::model::{host_key, HostRecord};
use crate::core::turn::{Log, Turn};

#[derive(Debug)]
pub struct HostState {
    pub rec: HostRecord,
    /// The labels its plug announces: shown, never used to target.
    pub reported: vigie_wire::tower::Labels,
    pub last_seen: Option<Instant>,
    pub online: bool,
    /// Why its plug refuses orders (it cannot journal), from its last
    /// heartbeat: nothing is dispatched to it meanwhile.
    pub refusing: Option<String>,
    pub last_order: Option<Instant>,
    /// Times its unacknowledged order was sent again: each resend waits
    /// twice as long as the one before ([`resend_delay`]), so a fleet
    /// too busy to read its orders is not sent more of them.
    pub resends: u32,
}

/// The wait before an unacknowledged order goes again after `resends`
/// resends: `first`, doubling, at most 16 times `first`.
pub fn resend_delay(first: Duration, resends: u32) -> Duration {
    first.saturating_mul(1 << resends.min(4))
}

impl HostState {
    pub fn new(rec: HostRecord) -> Self {
        Self {
            rec,
            reported: Default::default(),
            last_seen: None,
            online: false,
            refusing: None,
            last_order: None,
            resends: 0,
        }
    }

    /// Whether an order may go to it now: online, not held, not refusing.
    pub fn takes_orders(&self) -> bool {
        self.online && !self.rec.held && self.refusing.is_none()
    }

    /// Adopts a plug's journal numbered `inc`: numbering starts again.
    pub fn adopt_incarnation(&mut self, inc: u64, turn: &mut Turn) -> Incarnation {
        if inc == self.rec.incarnation {
            return Incarnation::Current;
        }
        if inc < self.rec.incarnation {
            return Incarnation::Older;
        }
        let first = self.rec.incarnation == 0;
        self.rec.incarnation = inc;
        self.rec.report_seq = 0;
        turn.dirty_hosts.insert(self.rec.id.clone());
        if first {
            return Incarnation::First;
        }
        turn.logs.push(Log::HostReset {
            host: self.rec.id.clone(),
            incarnation: inc,
        });
        Incarnation::Reset
    }

    /// A plug with a new journal: hand it the next incarnation (again, if
    /// the first hand-out was lost). It is not online before it uses it.
    pub fn issue_incarnation(&mut self, turn: &mut Turn) {
        let host = self.rec.id.clone();
        let next = if self.rec.issued > self.rec.incarnation {
            self.rec.issued
        } else {
            self.rec.issued.max(self.rec.incarnation) + 1
        };
        if next != self.rec.issued {
            self.rec.issued = next;
            turn.dirty_hosts.insert(host.clone());
            turn.logs.push(Log::IncarnationIssued {
                host: host.clone(),
                incarnation: next,
            });
        }
        self.set_offline(turn);
        turn.publish.push((
            vec![host_topic(&host)],
            Published::Incarnation {
                host,
                incarnation: next,
            },
        ));
    }

    /// Why its plug refuses orders now, if it does; true when that
    /// changed (an order it refused is then sent again at once, not
    /// after a resend delay).
    pub fn set_refusing(&mut self, refusing: Option<String>, turn: &mut Turn) -> bool {
        if self.refusing == refusing {
            return false;
        }
        let host = self.rec.id.clone();
        turn.logs.push(match &refusing {
            Some(reason) => Log::HostRefusing {
                host,
                reason: reason.clone(),
            },
            None => Log::HostResumed { host },
        });
        self.refusing = refusing;
        self.last_order = None;
        self.resends = 0;
        true
    }

    /// Numbers a report `seq`: `Ok(true)` the next one (taken, to be
    /// acknowledged), `Ok(false)` one already applied (acknowledged
    /// again: the plug missed it), `Err` a gap (the plug resends
    /// everything unacknowledged, in order).
    pub fn take_report(&mut self, seq: u64, turn: &mut Turn) -> Result<bool, &'static str> {
        if seq <= self.rec.report_seq {
            turn.acks.insert(self.rec.id.clone());
            return Ok(false);
        }
        if seq != self.rec.report_seq + 1 {
            return Err("out_of_order");
        }
        self.rec.report_seq = seq;
        turn.dirty_hosts.insert(self.rec.id.clone());
        turn.acks.insert(self.rec.id.clone());
        Ok(true)
    }

    /// Holds or releases its queue; false when it already was.
    pub fn set_held(&mut self, held: bool, turn: &mut Turn) -> bool {
        if self.rec.held == held {
            return false;
        }
        self.rec.held = held;
        turn.dirty_hosts.insert(self.rec.id.clone());
        turn.logs.push(Log::HostHeld {
            host: self.rec.id.clone(),
            held,
        });
        true
    }

    /// Its agent's key revoked: offline at once, and not alive again
    /// before a beat of a key it still has.
    pub fn cut_off(&mut self, turn: &mut Turn) {
        self.set_offline(turn);
        self.last_seen = None;
    }

    /// Its labels replaced; the ones before, if they differ.
    pub fn relabel(&mut self, labels: Labels, turn: &mut Turn) -> Option<Labels> {
        if self.rec.labels == labels {
            return None;
        }
        turn.dirty_hosts.insert(self.rec.id.clone());
        Some(std::mem::replace(&mut self.rec.labels, labels))
    }

    /// Marks it offline, logged once.
    pub fn set_offline(&mut self, turn: &mut Turn) {
        if self.online {
            self.online = false;
            turn.logs.push(Log::HostOffline {
                host: self.rec.id.clone(),
            });
        }
    }

    /// Marks it online, logged once; true when it was offline.
    pub fn set_online(&mut self, turn: &mut Turn) -> bool {
        if self.online {
            return false;
        }
        self.online = true;
        // Back from silence: what it missed goes again after the first delay.
        self.resends = 0;
        turn.logs.push(Log::HostOnline {
            host: self.rec.id.clone(),
        });
        true
    }
}

/// What a plug's journal number is to its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incarnation {
    /// The one it has: nothing changes.
    Current,
    /// An older journal's: its message is ignored.
    Older,
    /// Its first: adopted.
    First,
    /// A newer journal: adopted, the change it ran is over.
    Reset,
}

/// Every known host by id.
#[derive(Default)]
pub struct Hosts {
    by_id: BTreeMap<HostId, HostState>,
}

impl Hosts {
    /// The hosts a start read from the store, none heard yet.
    pub fn loaded(recs: Vec<HostRecord>) -> Self {
        let by_id = recs
            .into_iter()
            .map(|rec| (rec.id.clone(), HostState::new(rec)))
            .collect();
        Self { by_id }
    }

    pub fn get(&self, id: &str) -> Option<&HostState> {
        self.by_id.get(id)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut HostState> {
        self.by_id.get_mut(id)
    }

    /// The host `id` if it is `tenant`'s (another tenant's does not exist
    /// for the caller).
    pub fn of_tenant(&self, id: &str, tenant: &str) -> Option<&HostState> {
        self.by_id.get(id).filter(|h| h.rec.tenant == tenant)
    }

    pub fn contains(&self, id: &str) -> bool {
        self.by_id.contains_key(id)
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every host, by id.
    pub fn values(&self) -> impl Iterator<Item = &HostState> {
        self.by_id.values()
    }

    /// The tenant's hosts online now that `selector` matches (by their
    /// stored labels): where a `follow: true` environment may deploy.
    pub fn online_matching<'a>(
        &'a self,
        tenant: &'a str,
        selector: &'a vigie_changes::Selector,
    ) -> impl Iterator<Item = &'a HostId> + 'a {
        self.by_id
            .iter()
            .filter(move |(id, h)| {
                h.online && h.rec.tenant == tenant && selector.matches(id, &h.rec.labels)
            })
            .map(|(id, _)| id)
    }

    /// A new host (or one replaced), not heard yet.
    pub fn insert(&mut self, host: HostState) {
        self.by_id.insert(host.rec.id.clone(), host);
    }

    pub fn remove(&mut self, id: &str) -> Option<HostState> {
        self.by_id.remove(id)
    }

    /// Marks offline every online host not heard for `timeout`.
    pub fn judge_silent(&mut self, now: Instant, timeout: Duration, turn: &mut Turn) {
        for h in self.by_id.values_mut() {
            let alive = h.last_seen.is_some_and(|t| now.duration_since(t) < timeout);
            if !alive {
                h.set_offline(turn);
            }
        }
    }

    /// Writes the turn's changed host records.
    pub fn persist_dirty(&self, turn: &mut Turn) {
        for id in std::mem::take(&mut turn.dirty_hosts) {
            if let Some(h) = self.by_id.get(&id) {
                turn.put(host_key(&id), encode(&h.rec));
            }
        }
    }

    /// Publishes the turn's report acknowledgements, each up to its
    /// host's last applied report.
    pub fn publish_acks(&self, turn: &mut Turn) {
        for host in std::mem::take(&mut turn.acks) {
            if let Some(h) = self.by_id.get(&host) {
                let ack = Published::ReportAck {
                    host: host.clone(),
                    upto: h.rec.report_seq,
                };
                turn.publish.push((vec![host_topic(&host)], ack));
            }
        }
    }
}

impl std::ops::Index<&str> for Hosts {
    type Output = HostState;

    /// The host `id`; panics if unknown (tests).
    fn index(&self, id: &str) -> &HostState {
        &self.by_id[id]
    }
}
