//! Hosts' labels are the tower's to give: the setup's label rules, applied
//! to every host when it registers (setup, `hosts add`, an accepted agent
//! key, a plug announcing itself), and operators' `hosts label`, audited
//! `labels_set` with before and after. Registering never replaces the
//! labels of a host that exists.

use vigie_changes::Selector;
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind, Caller, Labels};

use crate::api::show;
use crate::model::HostRecord;
use crate::tower::{HostState, Tower};
use crate::turn::{Log, Turn};

/// A setup rule: hosts the selector matches get these labels.
#[derive(Debug, Clone)]
pub struct LabelRule {
    pub selector: Selector,
    pub labels: Labels,
}

impl LabelRule {
    /// A rule from its setup spelling; the error names the selector.
    pub fn new(hosts: &str, labels: Labels) -> Result<Self, String> {
        let selector = Selector::parse(hosts).map_err(|e| format!("rule {hosts:?}: {e}"))?;
        Ok(Self { selector, labels })
    }
}

/// A host's labels once the rules are applied, in order, each seeing the
/// labels the ones before it gave (as the launcher applies them to the
/// setup's hosts).
pub fn with_rules(rules: &[LabelRule], id: &str, mut labels: Labels) -> Labels {
    for r in rules {
        if r.selector.matches(id, &labels) {
            labels.extend(r.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    labels
}

/// What registering a host does when the id exists.
pub enum Register {
    /// An operator's `hosts add`: an existing host is a conflict (its
    /// labels change only through `hosts label`).
    New(Labels),
    /// Make sure it exists (accepting an agent key): an existing host is
    /// left as it is.
    Ensure,
    /// The setup file: an existing host gets the setup's labels.
    Setup(Labels),
}

impl Tower {
    /// A new host in `tenant`, the rules applied to `labels`.
    pub(crate) fn new_host(&mut self, tenant: &str, id: &str, labels: Labels, turn: &mut Turn) {
        let labels = with_rules(&self.rules, id, labels);
        self.hosts.insert(
            id.to_owned(),
            HostState::new(HostRecord::new(id, tenant, labels)),
        );
        turn.logs.push(Log::HostRegistered {
            host: id.to_owned(),
        });
        turn.dirty_hosts.insert(id.to_owned());
    }

    /// Replaces a host's labels, audited with before and after; nothing
    /// when they are the same.
    pub(crate) fn set_labels(
        &mut self,
        caller: &Caller,
        host: &str,
        labels: Labels,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        let Some(h) = self.hosts.get_mut(host) else {
            return Err(ApiFault::new(
                ApiFaultKind::NotFound,
                format!("no host {host}"),
            ));
        };
        if h.rec.labels == labels {
            return Ok(ApiAnswer::Done);
        }
        let before = std::mem::replace(&mut h.rec.labels, labels);
        let summary = format!(
            "host {host} labels [{}] -> [{}]",
            show(&before),
            show(&h.rec.labels)
        );
        turn.dirty_hosts.insert(host.to_owned());
        self.audit_host(turn, caller, host, "labels_set", summary);
        Ok(ApiAnswer::Done)
    }

    /// `hosts label ID k=v -k`: sets and removes labels of a host of the
    /// caller's tenant and scope.
    pub(crate) fn host_label(
        &mut self,
        caller: &Caller,
        host: &str,
        set: Labels,
        remove: Vec<String>,
        turn: &mut Turn,
    ) -> Result<ApiAnswer, ApiFault> {
        let Some(h) = self
            .hosts
            .get(host)
            .filter(|h| h.rec.tenant == caller.tenant)
        else {
            return Err(ApiFault::new(
                ApiFaultKind::NotFound,
                format!("no host {host}"),
            ));
        };
        self.check_host(caller, host)?;
        if let Some(k) = set.keys().find(|k| k.is_empty() || remove.contains(k)) {
            return Err(ApiFault::new(
                ApiFaultKind::Invalid,
                format!("label {k:?}: set and removed at once, or empty"),
            ));
        }
        let mut labels = h.rec.labels.clone();
        for k in &remove {
            labels.remove(k);
        }
        labels.extend(set);
        self.set_labels(caller, host, labels, turn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn rules_apply_in_order_to_ids_and_to_labels_given_so_far() {
        let rules = vec![
            LabelRule::new("web-*", labels(&[("role", "web")])).unwrap(),
            LabelRule::new("role=web", labels(&[("tier", "front")])).unwrap(),
        ];
        assert_eq!(
            with_rules(&rules, "web-9", Labels::new()),
            labels(&[("role", "web"), ("tier", "front")])
        );
        assert_eq!(
            with_rules(&rules, "db-1", labels(&[("env", "prod")])),
            labels(&[("env", "prod")])
        );
        assert!(LabelRule::new("bad id!", Labels::new()).is_err());
    }
}
