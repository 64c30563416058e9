//! Hosts' labels are the tower's to give: the setup's label rules, applied
//! to every host when it registers (setup, `hosts add`, an accepted agent
//! key, a plug announcing itself), and operators' `hosts label`, audited
//! `labels_set` with before and after. Registering never replaces the
//! labels of a host that exists.

use vigie_changes::Selector;
use vigie_wire::tower::Labels;

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

/// Labels as `k=v,k=v` for audit summaries.
pub(crate) fn show(labels: &Labels) -> String {
    let text: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    text.join(",")
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
