//! Who may hand out or take over which permissions, and which must keep a
//! holder: pure rules over grants, tested alone. Nobody grants a verb or
//! a scope wider than their own, nobody rotates the key of or revokes an
//! operator holding a grant they lack (whoever made whom), and the last
//! holder of a guarded verb is never revoked.

use vigie_wire::front::{Grant, OperatorRecord, Verb};
use vigie_wire::tower::Labels;

/// Whether `held` covers `asked`: the same verb over every host (`*`), or
/// over exactly the same scope. Selectors are not compared beyond that
/// (whether one label selector contains another depends on hosts that do
/// not exist yet), so a narrower scope spelled differently is refused:
/// the safe side.
pub fn covers(held: &[Grant], asked: &Grant) -> bool {
    held.iter().any(|g| {
        g.verb == asked.verb && (g.scope.trim() == "*" || g.scope.trim() == asked.scope.trim())
    })
}

/// The grants of `asked` that `held` does not cover (empty: all covered).
pub fn beyond<'a>(held: &[Grant], asked: &'a [Grant]) -> Vec<&'a Grant> {
    asked.iter().filter(|g| !covers(held, g)).collect()
}

/// What an operator may do to another of its tenant that depends on who
/// is the stronger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    /// Give it a new key: whoever holds that key becomes that operator.
    Rotate,
    /// Cut it off: it could otherwise be added again under the same name
    /// with the actor's key (a takeover in two calls), and a weaker
    /// operator could lock a stronger one out.
    Revoke,
    /// Take one of its grants: a weaker operator could otherwise strip a
    /// stronger one of its powers.
    Ungrant,
}

impl Over {
    /// The words of the refusal and of its audit record.
    pub fn word(self) -> &'static str {
        match self {
            Over::Rotate => "rotate the key of",
            Over::Revoke => "revoke",
            Over::Ungrant => "take a grant from",
        }
    }
}

/// The grants of `target` that `held` lacks: rotating its key or revoking
/// it is refused unless this is empty. Who created whom does not matter —
/// an operator minted by another holds no more than it, so it may act on
/// its maker only if it holds every one of its maker's grants.
pub fn stronger<'a>(held: &[Grant], target: &'a OperatorRecord) -> Vec<&'a Grant> {
    beyond(held, &target.grants)
}

/// Whether an operator holds `verb` at all.
pub fn holds(op: &OperatorRecord, verb: Verb) -> bool {
    !op.revoked && op.grants.iter().any(|g| g.verb == verb)
}

/// Whether `held` lets its holder queue changes on a host `id` with these
/// labels: a `changes.submit` grant whose scope (a selector) matches it.
/// A provisioning request with an init change needs this over every
/// server it makes a host.
pub fn may_submit_on(held: &[Grant], id: &str, labels: &Labels) -> bool {
    held.iter().any(|g| {
        g.verb == Verb::ChangesSubmit
            && vigie_changes::GrantScope::parse(&g.scope).is_ok_and(|s| s.matches_host(id, labels))
    })
}

/// The verbs that must always keep a holder: `tenants.admin` in the whole
/// tower, and the power to manage each tenant's operators —
/// `operators.admin` in that tenant, or `tenants.admin` anywhere (which
/// acts in every tenant).
pub const GUARDED: [Verb; 2] = [Verb::TenantsAdmin, Verb::OperatorsAdmin];

/// Which guarded verb revoking `target` would leave without a holder, if
/// any. `all` is every operator of the tower.
pub fn last_holder(all: &[OperatorRecord], target: &OperatorRecord) -> Option<Verb> {
    let others = || {
        all.iter()
            .filter(move |o| !(o.name == target.name && o.tenant == target.tenant))
    };
    GUARDED.into_iter().find(|&verb| {
        holds(target, verb)
            && !others().any(|o| match verb {
                Verb::OperatorsAdmin => {
                    (o.tenant == target.tenant && holds(o, verb)) || holds(o, Verb::TenantsAdmin)
                }
                _ => holds(o, verb),
            })
    })
}

/// Whether some operator of `ops` keeps `verb` for `tenant`: anyone for
/// `tenants.admin`; for `operators.admin`, one of that tenant or a
/// `tenants.admin` anywhere (which acts in every tenant).
fn kept<'a>(mut ops: impl Iterator<Item = &'a OperatorRecord>, verb: Verb, tenant: &str) -> bool {
    ops.any(|o| match verb {
        Verb::OperatorsAdmin => {
            (o.tenant == tenant && holds(o, verb)) || holds(o, Verb::TenantsAdmin)
        }
        _ => holds(o, verb),
    })
}

/// Which guarded verb would be left without a holder if `changed` (an
/// operator's record with grants taken away) replaced its stored record
/// in `all`, every operator of the tower.
pub fn left_without(all: &[OperatorRecord], changed: &OperatorRecord) -> Option<Verb> {
    let same = |o: &OperatorRecord| o.name == changed.name && o.tenant == changed.tenant;
    let after = || all.iter().map(|o| if same(o) { changed } else { o });
    GUARDED.into_iter().find(|&verb| {
        kept(all.iter(), verb, &changed.tenant) && !kept(after(), verb, &changed.tenant)
    })
}

/// `grants` without the one equal to `grant` (verb and scope, spaces
/// around the scope aside); `None` if none is.
pub fn without(grants: &[Grant], grant: &Grant) -> Option<Vec<Grant>> {
    let same = |g: &Grant| g.verb == grant.verb && g.scope.trim() == grant.scope.trim();
    let at = grants.iter().position(same)?;
    let mut rest = grants.to_vec();
    rest.remove(at);
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(text: &str) -> Grant {
        Grant::parse(text).unwrap()
    }

    fn op(tenant: &str, name: &str, grants: &[&str]) -> OperatorRecord {
        OperatorRecord {
            name: name.into(),
            tenant: tenant.into(),
            public: String::new(),
            grants: grants.iter().map(|t| g(t)).collect(),
            revoked: false,
        }
    }

    #[test]
    fn a_grant_is_covered_by_the_same_verb_over_every_host_or_the_same_scope() {
        let held = [g("changes.submit@web-*"), g("hosts.read")];
        assert!(covers(&held, &g("changes.submit@web-*")));
        assert!(covers(&held, &g("hosts.read@role=db")));
        assert!(!covers(&held, &g("changes.submit")), "wider scope");
        assert!(!covers(&held, &g("changes.submit@db-*")), "other scope");
        assert!(!covers(&held, &g("hosts.admin@web-*")), "other verb");
        let asked = [
            g("hosts.read"),
            g("operators.admin"),
            g("changes.submit@web-*"),
        ];
        assert_eq!(beyond(&held, &asked), vec![&asked[1]]);
    }

    /// Issue 18 item 7: a maker's operators.admin hands a peer the power to
    /// manage operators, not power over the maker.
    #[test]
    fn an_operator_acts_on_another_only_if_it_holds_every_grant_of_it() {
        let maker = op(
            "acme",
            "maker",
            &["operators.admin", "changes.submit", "hosts.read@web-*"],
        );
        let minted = op("acme", "minted", &["operators.admin", "hosts.read@web-*"]);
        assert_eq!(
            stronger(&minted.grants, &maker),
            vec![&maker.grants[1]],
            "the minted peer lacks changes.submit: it may not touch its maker"
        );
        assert!(stronger(&maker.grants, &minted).is_empty());
        // A scope narrower than the target's is not enough.
        let narrow = op(
            "acme",
            "narrow",
            &["operators.admin", "changes.submit@web-*"],
        );
        assert_eq!(stronger(&narrow.grants, &maker).len(), 2);
        // Equal grants: neither is stronger, either may act on the other.
        let twin = op(
            "acme",
            "twin",
            &["operators.admin", "changes.submit", "hosts.read@web-*"],
        );
        assert!(stronger(&twin.grants, &maker).is_empty());
        assert!(stronger(&maker.grants, &twin).is_empty());
    }

    #[test]
    fn the_last_holder_of_a_guarded_verb_is_found_per_tower_and_per_tenant() {
        let admin = op("default", "admin", &["tenants.admin", "operators.admin"]);
        let alice = op("acme", "alice", &["operators.admin"]);
        let bob = op("acme", "bob", &["operators.admin"]);
        let all = vec![admin.clone(), alice.clone(), bob.clone()];
        assert_eq!(last_holder(&all, &admin), Some(Verb::TenantsAdmin));
        assert_eq!(
            last_holder(&all, &alice),
            None,
            "bob still holds it in acme"
        );
        let mut revoked_bob = bob.clone();
        revoked_bob.revoked = true;
        let all = vec![admin.clone(), alice.clone(), revoked_bob];
        // A tenants.admin anywhere still manages acme's operators...
        assert_eq!(last_holder(&all, &alice), None);
        // ...another tenant's operators.admin does not.
        let other = op("globex", "gina", &["operators.admin"]);
        let all = vec![alice.clone(), other];
        assert_eq!(last_holder(&all, &alice), Some(Verb::OperatorsAdmin));
    }

    #[test]
    fn taking_a_grant_never_leaves_a_guarded_verb_without_a_holder() {
        let admin = op("default", "admin", &["tenants.admin", "operators.admin"]);
        let alice = op("acme", "alice", &["operators.admin", "hosts.read"]);
        let all = vec![admin.clone(), alice.clone()];
        let strip = |o: &OperatorRecord, text: &str| {
            let mut o = o.clone();
            o.grants = without(&o.grants, &g(text)).unwrap();
            o
        };
        assert_eq!(
            left_without(&all, &strip(&admin, "tenants.admin")),
            Some(Verb::TenantsAdmin)
        );
        // alice's operators.admin is not the last: the tower's
        // tenants.admin manages acme's operators too.
        assert_eq!(left_without(&all, &strip(&alice, "operators.admin")), None);
        assert_eq!(left_without(&all, &strip(&alice, "hosts.read")), None);
        // Without a tenants.admin in the tower, it is the last.
        let all = vec![alice.clone(), op("globex", "gina", &["operators.admin"])];
        assert_eq!(
            left_without(&all, &strip(&alice, "operators.admin")),
            Some(Verb::OperatorsAdmin)
        );
        assert!(without(&alice.grants, &g("hosts.read@web-*")).is_none());
    }

    #[test]
    fn submitting_on_a_future_host_needs_changes_submit_whose_scope_matches_it() {
        let web: Labels = [("role".to_owned(), "web".to_owned())].into();
        let admin_only = [g("servers.admin"), g("hosts.admin")];
        assert!(!may_submit_on(&admin_only, "web-1", &web));
        assert!(may_submit_on(&[g("changes.submit")], "web-1", &web));
        assert!(may_submit_on(
            &[g("changes.submit@role=web")],
            "web-1",
            &web
        ));
        assert!(may_submit_on(
            &[g("changes.submit@web-*")],
            "web-1",
            &Labels::new()
        ));
        assert!(!may_submit_on(&[g("changes.submit@db-*")], "web-1", &web));
        assert!(!may_submit_on(&[g("changes.read")], "web-1", &web));
    }
}
