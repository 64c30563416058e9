//! The gauges read at scrape time: the fleet from the referee's internal
//! API (hosts online and offline, queue depths), Escalator's counters, and
//! the size of its database on disk. `Fleet::of` is the arithmetic, tested
//! alone; `Sources::read` does the I/O, each part with a short timeout, and
//! leaves a part `None` when it could not be read.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vigie_client::{calls, ApiClient};
use vigie_wire::escalator::Stats;
use vigie_wire::observe::HostSample;
use vigie_wire::tower::{Caller, HostView};

/// How long a scrape waits for each daemon.
const READ_TIMEOUT: Duration = Duration::from_millis(1_000);

/// The fleet as the referee sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fleet {
    pub online: u64,
    pub offline: u64,
    /// Changes not final, over every host.
    pub queued: u64,
    /// The host with the most changes not final, and how many.
    pub deepest: Option<(String, u32)>,
}

impl Fleet {
    pub fn of(hosts: &[HostView]) -> Self {
        let mut f = Fleet::default();
        for h in hosts {
            if h.online {
                f.online += 1;
            } else {
                f.offline += 1;
            }
            f.queued += u64::from(h.queued);
            // Ties go to the first host in id order: the series keeps its
            // label from scrape to scrape.
            if h.queued > 0 && f.deepest.as_ref().is_none_or(|(_, d)| h.queued > *d) {
                f.deepest = Some((h.id.clone(), h.queued));
            }
        }
        f
    }
}

/// What one scrape read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// `None`: the referee did not answer.
    pub fleet: Option<Fleet>,
    /// `None`: Escalator did not answer.
    pub escalator: Option<Stats>,
    /// `None`: the database dir could not be read.
    pub database_bytes: Option<u64>,
    /// The hosts' current samples (stale ones left out: a host that stopped
    /// sending has no series rather than its last values), by host id.
    pub host_samples: Vec<HostSample>,
}

/// Where the snapshot is read from. Not `Send` (Escalator's client is
/// single-threaded): it lives on the thread that answers scrapes.
pub struct Sources {
    api: String,
    orders: String,
    /// One client per tenant: a call sees its caller's tenant only.
    referee: BTreeMap<String, ApiClient>,
    escalator: Option<vigie_escalator::Client>,
    escalator_endpoint: String,
    database_dir: Option<PathBuf>,
}

impl Sources {
    pub fn new(api: &str, orders: &str, escalator: &str, database_dir: Option<PathBuf>) -> Self {
        Self {
            api: api.to_owned(),
            orders: orders.to_owned(),
            referee: BTreeMap::new(),
            escalator: None,
            escalator_endpoint: escalator.to_owned(),
            database_dir,
        }
    }

    fn client(&mut self, tenant: &str) -> Option<&mut ApiClient> {
        if !self.referee.contains_key(tenant) {
            let caller = Caller::internal(tenant, "metrics");
            let mut c = ApiClient::direct(&self.api, &self.orders, caller).ok()?;
            c.set_timeout(READ_TIMEOUT);
            self.referee.insert(tenant.to_owned(), c);
        }
        self.referee.get_mut(tenant)
    }

    fn hosts_of(&mut self, tenant: &str) -> Option<Vec<HostView>> {
        self.client(tenant)?.ask(calls::Hosts).ok()
    }

    /// The current (not stale) samples of a tenant's hosts.
    fn samples_of(&mut self, tenant: &str) -> Option<Vec<HostSample>> {
        let all = self
            .client(tenant)?
            .ask(calls::HostMetrics { host: None })
            .ok()?;
        Some(
            all.into_iter()
                .filter(|m| !m.stale)
                .filter_map(|m| m.sample)
                .collect(),
        )
    }

    fn fleet(&mut self, tenants: &[String]) -> Option<(Fleet, Vec<HostSample>)> {
        let mut hosts = Vec::new();
        let mut samples = Vec::new();
        for t in tenants {
            hosts.extend(self.hosts_of(t)?);
            // Host samples are a lesser source: not answering them does
            // not take the fleet's gauges away (its series are left out).
            samples.extend(self.samples_of(t).unwrap_or_default());
        }
        hosts.sort_by(|a, b| a.id.cmp(&b.id));
        samples.sort_by(|a, b| a.host.cmp(&b.host));
        Some((Fleet::of(&hosts), samples))
    }

    fn escalator_stats(&mut self) -> Option<Stats> {
        if self.escalator.is_none() {
            let c = vigie_escalator::Client::connect(&self.escalator_endpoint).ok()?;
            c.set_timeouts(READ_TIMEOUT / 2, READ_TIMEOUT);
            self.escalator = Some(c);
        }
        self.escalator.as_ref()?.stats().ok()
    }

    /// Reads everything; a part that fails is left out.
    pub fn read(&mut self, tenants: &[String]) -> Snapshot {
        let (fleet, host_samples) = match self.fleet(tenants) {
            Some((f, s)) => (Some(f), s),
            None => (None, Vec::new()),
        };
        Snapshot {
            fleet,
            escalator: self.escalator_stats(),
            database_bytes: self.database_dir.as_deref().and_then(dir_bytes),
            host_samples,
        }
    }
}

/// The bytes of the files under `dir`, recursively.
fn dir_bytes(dir: &Path) -> Option<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir(dir).ok()? {
        let Ok(entry) = entry else { continue };
        let Ok(meta) = entry.metadata() else { continue };
        if meta.is_dir() {
            total += dir_bytes(&entry.path()).unwrap_or(0);
        } else {
            total += meta.len();
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(id: &str, online: bool, queued: u32) -> HostView {
        HostView {
            id: id.into(),
            tenant: "default".into(),
            labels: Default::default(),
            reported: Default::default(),
            online,
            queued,
            in_flight: None,
            refusing: None,
            held: false,
            plug_down: None,
        }
    }

    #[test]
    fn the_fleet_counts_hosts_and_finds_the_deepest_queue() {
        let f = Fleet::of(&[
            host("a", true, 2),
            host("b", false, 5),
            host("c", true, 5),
            host("d", true, 0),
        ]);
        assert_eq!(f.online, 3);
        assert_eq!(f.offline, 1);
        assert_eq!(f.queued, 12);
        assert_eq!(f.deepest, Some(("b".into(), 5)));
        assert_eq!(Fleet::of(&[host("a", true, 0)]).deepest, None);
    }
}
