//! Active/standby towers (`ha:` in the setup): the group's state lives in
//! etcd, one tower is active at a time. [`check`] validates the section
//! (no I/O); [`elect`] waits as a standby until this tower's lease holds
//! the group's election key; [`Keeper`] keeps that lease alive from a
//! thread of its own and says when it is lost (deposed: the launcher stops
//! every child). The active's escalator is fenced by the same lease, so a
//! deposed tower's late write is refused by etcd whatever it believes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::json;
use vigie_escalator::engine::{Election, Leader, TxnLimits};

use crate::events::{fields, Events};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHa {
    etcd: Vec<String>,
    tower: String,
    group: Option<String>,
    lease_ttl: Option<String>,
    max_txn_ops: Option<usize>,
    max_request_bytes: Option<usize>,
}

/// The `ha:` section, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaSetup {
    /// Client URLs of the etcd members.
    pub etcd: Vec<String>,
    /// This tower's name in its group.
    pub tower: String,
    /// The group: every tower of it shares its state and front-door key.
    pub group: String,
    /// How long a silent active stays active.
    pub lease_ttl: Duration,
    pub limits: TxnLimits,
}

impl HaSetup {
    /// Every key of the group's databases is under it.
    pub fn prefix(&self) -> String {
        format!("vigie/{}/", self.group)
    }

    /// Held by the active tower's lease.
    pub fn election_key(&self) -> String {
        format!("vigie/{}/leader", self.group)
    }

    /// The escalator's arguments: its databases in etcd, fenced by `lease`.
    pub fn escalator_args(&self, lease: i64) -> Vec<String> {
        let mut a = Vec::new();
        for e in &self.etcd {
            a.extend(["--etcd".to_owned(), e.clone()]);
        }
        a.extend([
            "--etcd-prefix".to_owned(),
            self.prefix(),
            "--etcd-max-txn-ops".to_owned(),
            self.limits.ops.to_string(),
            "--etcd-max-request-bytes".to_owned(),
            self.limits.bytes.to_string(),
            "--fence-key".to_owned(),
            self.election_key(),
            "--fence-lease".to_owned(),
            format!("{lease:x}"),
        ]);
        a
    }
}

fn name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Checks the section; `name` (the setup's) is the default group. Err
/// names the field at fault.
pub(crate) fn check(raw: Option<RawHa>, name: &str) -> Result<Option<HaSetup>, String> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if raw.etcd.is_empty() {
        return Err("ha.etcd: at least one etcd member's client URL".into());
    }
    if let Some(bad) = raw.etcd.iter().find(|e| !e.starts_with("http://")) {
        return Err(format!("ha.etcd: {bad:?} is not http://HOST:PORT"));
    }
    let group = raw.group.unwrap_or_else(|| name.to_owned());
    for (field, v) in [("tower", &raw.tower), ("group", &group)] {
        if !name_ok(v) {
            return Err(format!("ha.{field}: {v:?} must be 1-64 of [A-Za-z0-9._-]"));
        }
    }
    let lease_ttl = match &raw.lease_ttl {
        None => Duration::from_secs(5),
        Some(s) => vigie_changes::parse_duration_ms(s)
            .map(Duration::from_millis)
            .map_err(|e| format!("ha.lease_ttl: {e}"))?,
    };
    if lease_ttl < Duration::from_secs(2) {
        return Err("ha.lease_ttl: at least 2s (etcd's leases are whole seconds)".into());
    }
    let d = TxnLimits::default();
    Ok(Some(HaSetup {
        etcd: raw.etcd,
        tower: raw.tower,
        group,
        lease_ttl,
        limits: TxnLimits {
            ops: raw.max_txn_ops.unwrap_or(d.ops),
            bytes: raw.max_request_bytes.unwrap_or(d.bytes),
        },
    }))
}

/// This tower as the active one: its lease, renewed from the loop.
#[derive(Debug)]
pub struct Lead {
    election: Election,
    pub lease: i64,
    ttl: Duration,
    /// When etcd last confirmed the lease.
    renewed: Instant,
    next: Instant,
}

/// Why the tower is no longer active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deposed(pub String);

fn election(ha: &HaSetup) -> Result<Election, String> {
    Election::new(
        &ha.etcd,
        ha.election_key().as_bytes(),
        &ha.tower,
        ha.lease_ttl,
    )
    .map_err(|e| e.to_string())
}

/// Waits as a standby until this tower holds the election key; `None`
/// when `shutdown` came first. Campaigns every third of the lease TTL, so
/// it takes over at most that long after the active's lease expired.
pub fn elect(ha: &HaSetup, events: &Events, shutdown: &AtomicBool) -> Option<Lead> {
    let t0 = Instant::now();
    let mut said = None;
    let mut lease = None;
    let step = ha.lease_ttl / 3;
    while !shutdown.load(Ordering::Relaxed) {
        let tried = election(ha).and_then(|mut e| {
            let l = match lease {
                Some(l) if e.keep_alive(l).map_err(|e| e.to_string())? => l,
                _ => e.grant(ha.lease_ttl).map_err(|e| e.to_string())?,
            };
            lease = Some(l);
            e.campaign(l)
                .map(|who| (e, l, who))
                .map_err(|e| e.to_string())
        });
        match tried {
            Ok((e, l, Leader::Me)) => {
                let f = fields([
                    ("tower", json!(ha.tower)),
                    ("group", json!(ha.group)),
                    ("lease", json!(format!("{l:x}"))),
                    ("waited_ms", json!(t0.elapsed().as_millis() as u64)),
                ]);
                events.emit("launcher", "tower_elected", f);
                let now = Instant::now();
                return Some(Lead {
                    election: e,
                    lease: l,
                    ttl: ha.lease_ttl,
                    renewed: now,
                    next: now + step,
                });
            }
            Ok((_, _, Leader::Other { name, .. })) if said.as_ref() != Some(&name) => {
                let f = fields([("tower", json!(ha.tower)), ("active", json!(name))]);
                events.emit("launcher", "tower_standby", f);
                said = Some(name);
            }
            Ok(_) => {}
            Err(e) => {
                let f = fields([("tower", json!(ha.tower)), ("error", json!(e))]);
                events.emit("launcher", "etcd_unreachable", f);
            }
        }
        std::thread::sleep(step);
    }
    None
}

impl Lead {
    /// Renews the lease when due. Err once it is lost: expired in etcd, or
    /// not confirmed for a whole TTL counted from the sending of the last
    /// renewal etcd confirmed (etcd out of reach: it may have expired
    /// there, and a standby may be active).
    fn tick(&mut self, now: Instant) -> Result<(), Deposed> {
        if now.duration_since(self.renewed) >= self.ttl {
            return Err(Deposed(format!(
                "lease {:x} not renewed for {:?}",
                self.lease, self.ttl
            )));
        }
        if now < self.next {
            return Ok(());
        }
        self.next = now + self.ttl / 3;
        match self.election.keep_alive(self.lease) {
            Ok(true) => {
                self.renewed = now;
                Ok(())
            }
            Ok(false) => Err(Deposed(format!("lease {:x} expired", self.lease))),
            Err(e) if now.duration_since(self.renewed) >= self.ttl => Err(Deposed(format!(
                "lease {:x} not renewed for {:?}: {e}",
                self.lease, self.ttl
            ))),
            Err(_) => Ok(()),
        }
    }

    /// Keeps the lease alive from a thread of its own, from the election
    /// on: starting the daemons may take longer than the lease lives.
    pub fn keep(mut self) -> Keeper {
        let lease = self.lease;
        let stop = Arc::new(AtomicBool::new(false));
        let deposed = Arc::new(Mutex::new(None));
        let (flag, lost) = (stop.clone(), deposed.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                if let Err(d) = self.tick(Instant::now()) {
                    if let Ok(mut l) = lost.lock() {
                        *l = Some(d);
                    }
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Some(self)
        });
        Keeper {
            lease,
            stop,
            deposed,
            thread: Some(thread),
        }
    }
}

/// The thread that keeps an active tower's lease alive.
#[derive(Debug)]
pub struct Keeper {
    pub lease: i64,
    stop: Arc<AtomicBool>,
    deposed: Arc<Mutex<Option<Deposed>>>,
    thread: Option<std::thread::JoinHandle<Option<Lead>>>,
}

impl Keeper {
    /// Why the tower is no longer active, once it is not.
    pub fn deposed(&self) -> Option<Deposed> {
        self.deposed.lock().ok().and_then(|d| d.clone())
    }

    /// Gives the role up at once (a clean stop): the standby need not wait
    /// for the lease to expire.
    pub fn resign(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(Ok(Some(mut lead))) = self.thread.take().map(|t| t.join()) {
            let _ = lead.election.resign(lead.lease);
        }
    }
}

#[cfg(test)]
mod tests {
    fn ha(section: &str) -> Result<Option<super::HaSetup>, String> {
        let raw = serde_norway::from_str(section).map_err(|e| e.to_string())?;
        super::check(raw, "prod")
    }

    #[test]
    fn the_ha_section_names_the_group_its_keys_and_the_fenced_escalator() {
        assert_eq!(
            super::check(None, "prod"),
            Ok(None),
            "single tower by default"
        );
        let h = ha("etcd: [http://10.0.0.1:2379, http://10.0.0.2:2379]\ntower: a\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.group.as_str(), h.lease_ttl.as_secs()), ("prod", 5));
        assert_eq!(h.election_key(), "vigie/prod/leader");
        let args = h.escalator_args(0xabc).join(" ");
        assert!(args.contains("--etcd http://10.0.0.2:2379"), "{args}");
        assert!(args.contains("--etcd-prefix vigie/prod/"), "{args}");
        assert!(
            args.contains("--fence-key vigie/prod/leader --fence-lease abc"),
            "{args}"
        );
    }

    #[test]
    fn a_wrong_ha_section_is_refused_naming_the_field() {
        let e = ha("etcd: []\ntower: a\n").unwrap_err();
        assert!(e.contains("ha.etcd"), "{e}");
        let e = ha("etcd: [https://x:2379]\ntower: a\n").unwrap_err();
        assert!(e.contains("http://HOST:PORT"), "{e}");
        let e = ha("etcd: [http://x:2379]\ntower: a/b\n").unwrap_err();
        assert!(e.contains("ha.tower"), "{e}");
        let e = ha("etcd: [http://x:2379]\ntower: a\nlease_ttl: 500ms\n").unwrap_err();
        assert!(e.contains("ha.lease_ttl"), "{e}");
        let e = ha("etcd: [http://x:2379]\ntower: a\nleader: me\n").unwrap_err();
        assert!(e.contains("leader"), "{e}");
    }
}
