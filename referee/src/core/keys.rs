//! The key registry: which Curve25519 public key may speak for which host
//! at the majordomo's door. The referee stores it (`key/<public>`), audits
//! every change to it, and publishes each change on `KEYS_TOPIC` after it is
//! stored; the majordomo keeps a copy and enforces it.

use vigie_wire::front::{KeyRecord, KeyState, KEYS_TOPIC};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Published};

use crate::core::audit::AuditAction;
use crate::core::scope::Visible;
use crate::core::state::Tower;
use crate::core::turn::Turn;

fn fault(kind: ApiFaultKind, msg: impl Into<String>) -> ApiFault {
    ApiFault::new(kind, msg)
}

/// A Z85 Curve25519 public key: 40 characters of the Z85 alphabet.
pub(crate) fn check_public(public: &str) -> Result<(), ApiFault> {
    let ok = public.len() == 40 && zmq_z85_alphabet(public);
    ok.then_some(()).ok_or_else(|| {
        fault(
            ApiFaultKind::Invalid,
            format!("{public:?} is not a Z85 public key (40 characters)"),
        )
    })
}

fn zmq_z85_alphabet(s: &str) -> bool {
    const Z85: &str =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    s.chars().all(|c| Z85.contains(c))
}

/// Most pending keys the registry holds: knocks beyond it are counted,
/// not stored (an unauthenticated peer must not grow the tower's state
/// without bound).
pub const MAX_PENDING: usize = 1_000;

impl Tower {
    /// A batch of knocks from the door (already rate-limited there):
    /// stores the new keys as pending up to [`MAX_PENDING`], and audits the
    /// batch as one record rather than one per key.
    fn knocks(
        &mut self,
        caller: &Caller,
        knocks: Vec<vigie_wire::front::Knock>,
        dropped: u64,
        turn: &mut Turn,
    ) {
        let mut pending = self
            .keys
            .values()
            .filter(|k| k.state == KeyState::Pending)
            .count();
        let (mut stored, mut over) = (0usize, dropped);
        let mut seen = std::collections::BTreeSet::new();
        let mut addresses = std::collections::BTreeSet::new();
        for k in knocks {
            if check_public(&k.public).is_err()
                || self.keys.contains_key(&k.public)
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
            self.keys.put(turn, rec.public.clone(), rec.clone());
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
        turn.logs.push(crate::core::turn::Log::KeysPending {
            stored,
            dropped: over,
        });
        self.audit_host(
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

    pub(crate) fn store_key(
        &mut self,
        turn: &mut Turn,
        caller: &Caller,
        rec: KeyRecord,
        action: AuditAction,
    ) {
        self.keys.put(turn, rec.public.clone(), rec.clone());
        let summary = format!("key {} {}", rec.public, rec.state.word());
        self.audit_host(turn, caller, &rec.host, action, summary);
        turn.logs.push(crate::core::turn::Log::KeyChanged {
            host: rec.host.clone(),
            public: rec.public.clone(),
            state: rec.state.word(),
        });
        turn.publish
            .push((vec![KEYS_TOPIC.to_vec()], Published::Key(rec)));
    }

    pub fn key_call(
        &mut self,
        caller: &Caller,
        call: KeyCall,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        match call {
            KeyCall::List => {
                let vis = Visible::of(caller);
                Ok(ApiAnswer::Keys(
                    self.keys
                        .values()
                        .filter(|k| k.tenant == caller.tenant)
                        .filter(|k| self.record_visible(&vis, &k.host))
                        .cloned()
                        .collect(),
                ))
            }
            KeyCall::Pending { knocks, dropped } => {
                self.knocks(caller, knocks, dropped, turn);
                Ok(ApiAnswer::Done)
            }
            KeyCall::Add { host, public } => self.key_add(caller, host, public, turn),
            KeyCall::Accept { host, public } => self.key_accept(caller, host, public, turn),
            KeyCall::Readmit { host, public } => self.key_readmit(caller, host, public, turn),
            KeyCall::Revoke { host } => self.key_revoke(caller, host, turn),
        }
    }

    /// An agent's key must not be an operator's.
    fn check_not_operator(&self, public: &str) -> Result<(), ApiFault> {
        let taken = self.operators.iter().any(|o| o.public == public);
        if taken {
            return Err(fault(
                ApiFaultKind::Conflict,
                "this key belongs to an operator: an agent needs its own key",
            ));
        }
        Ok(())
    }

    /// `keys add HOST KEY`: an agent's key accepted for a host, made if new.
    fn key_add(
        &mut self,
        caller: &Caller,
        host: String,
        public: String,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        check_public(&public)?;
        self.check_not_operator(&public)?;
        vigie_changes::validate_host_id(&host)
            .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
        if let Some(k) = self.keys.get(&public) {
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
        crate::core::handlers::host_calls::host_add(
            self,
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
        self.store_key(turn, caller, rec, AuditAction::KeyAdded);
        Ok(ApiAnswer::Done)
    }

    /// `keys accept HOST KEY`: a pending key accepted for a host.
    fn key_accept(
        &mut self,
        caller: &Caller,
        host: String,
        public: String,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        self.check_not_operator(&public)?;
        vigie_changes::validate_host_id(&host)
            .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
        if self.keys.get(&public).is_some_and(|k| {
            k.host == host && k.tenant == caller.tenant && k.state == KeyState::Revoked
        }) {
            return Err(readmit_hint(&host, &public));
        }
        let Some(mut rec) = self
            .keys
            .get(&public)
            .filter(|k| k.state == KeyState::Pending)
            .cloned()
        else {
            return Err(fault(
                ApiFaultKind::NotFound,
                format!("no pending key {public}"),
            ));
        };
        crate::core::handlers::host_calls::host_add(
            self,
            caller,
            &host,
            crate::core::labels::Register::Ensure,
            turn,
        )?;
        rec.host = host;
        rec.tenant = caller.tenant.clone();
        rec.state = KeyState::Accepted;
        self.store_key(turn, caller, rec, AuditAction::KeyAccepted);
        Ok(ApiAnswer::Done)
    }

    /// `keys readmit HOST KEY`: a revoked key of the host accepted again.
    fn key_readmit(
        &mut self,
        caller: &Caller,
        host: String,
        public: String,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        self.check_not_operator(&public)?;
        vigie_changes::validate_host_id(&host)
            .map_err(|e| fault(ApiFaultKind::Invalid, e.to_string()))?;
        self.check_host(caller, &host)?;
        let Some(mut rec) = self
            .keys
            .get(&public)
            .filter(|k| k.host == host && k.tenant == caller.tenant && k.state == KeyState::Revoked)
            .cloned()
        else {
            return Err(fault(
                ApiFaultKind::NotFound,
                format!("no revoked key {public} for host {host}"),
            ));
        };
        crate::core::handlers::host_calls::host_add(
            self,
            caller,
            &host,
            crate::core::labels::Register::Ensure,
            turn,
        )?;
        rec.state = KeyState::Accepted;
        self.store_key(turn, caller, rec, AuditAction::KeyReadmitted);
        Ok(ApiAnswer::Done)
    }

    /// `keys revoke HOST`: every live key of the host revoked, the host
    /// cut off at once.
    fn key_revoke(
        &mut self,
        caller: &Caller,
        host: String,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        self.check_host(caller, &host)?;
        let live: Vec<KeyRecord> = self
            .keys
            .values()
            .filter(|k| k.host == host && k.tenant == caller.tenant && k.state != KeyState::Revoked)
            .cloned()
            .collect();
        if live.is_empty() {
            return Err(fault(
                ApiFaultKind::NotFound,
                format!("no key for host {host}"),
            ));
        }
        for mut rec in live {
            rec.state = KeyState::Revoked;
            self.store_key(turn, caller, rec, AuditAction::KeyRevoked);
        }
        // Cut off now: nothing new is dispatched to it; its queue waits.
        if let Some(h) = self.hosts_mut().get_mut(&host) {
            if h.online {
                h.online = false;
                turn.logs
                    .push(crate::core::turn::Log::HostOffline { host: host.clone() });
            }
            h.last_seen = None;
        }
        Ok(ApiAnswer::Done)
    }
}

/// The key calls of the API, in one place.
pub enum KeyCall {
    List,
    Pending {
        knocks: Vec<vigie_wire::front::Knock>,
        dropped: u64,
    },
    Add {
        host: String,
        public: String,
    },
    Accept {
        host: String,
        public: String,
    },
    Revoke {
        host: String,
    },
    /// Accepts again a key revoked for this host.
    Readmit {
        host: String,
        public: String,
    },
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
