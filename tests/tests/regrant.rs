//! Issue 25 item 1: `vigie operators grant` / `ungrant` change an
//! operator's grants in place — same key, same connection, the new power
//! (or its loss) effective on its next call — audited, never wider than
//! the granter's own, never taken by someone weaker, never leaving the
//! tower without a `tenants.admin`.

use vigie_client::ApiClient;
use vigie_tests::front::{add_operator, admin, client_with, fault, grants, spec};
use vigie_tests::{Launcher, Setup};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind, AuditRecord, Labels};

use vigie_tests::stdout_ok as ok;

fn submit(c: &mut ApiClient, host: &str) -> Option<ApiFaultKind> {
    let call = ApiCall::Submit {
        spec: spec("regrant").ok()?,
        target: host.into(),
    };
    fault(c.call(call))
}

fn audit(t: &Launcher, tenant: &str) -> anyhow::Result<Vec<AuditRecord>> {
    let ApiAnswer::Audit(v) = admin(t, Some(tenant))?.call(ApiCall::Audit {
        host: None,
        change: None,
        limit: 1000,
        filter: Default::default(),
    })?
    else {
        anyhow::bail!("audit answer")
    };
    Ok(v)
}

#[test]
fn a_grant_is_given_and_taken_in_place_and_the_same_key_feels_it() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("regrant"))?;
    let dir = t.dir.path().to_path_buf();
    let mut boss = admin(&t, None)?;
    for host in ["web-1", "db-1"] {
        boss.call(ApiCall::HostAdd {
            host: host.into(),
            labels: Labels::new(),
        })?;
    }
    let keys = add_operator(&t, &dir, "default", "bob", &grants(&["hosts.read"])?)?;
    let mut bob = client_with(&t, &keys, None)?;
    assert_eq!(submit(&mut bob, "web-1"), Some(ApiFaultKind::Forbidden));

    ok(t.cli(&["operators", "grant", "bob", "changes.submit@web-*"])?)?;
    // The same connection, the same key: the new grant, and only its scope.
    assert_eq!(submit(&mut bob, "web-1"), None, "granted over web-*");
    assert_eq!(submit(&mut bob, "db-1"), Some(ApiFaultKind::Forbidden));
    let listed = ok(t.cli(&["operators", "--json"])?)?;
    let line = listed
        .lines()
        .find(|l| l.contains("\"bob\""))
        .unwrap_or_default();
    assert!(line.contains("changes.submit@web-*"), "{listed}");
    assert!(line.contains(&keys.public_z85()), "the key stays: {line}");

    ok(t.cli(&["operators", "ungrant", "bob", "changes.submit@web-*"])?)?;
    assert_eq!(submit(&mut bob, "web-1"), Some(ApiFaultKind::Forbidden));
    assert!(matches!(bob.call(ApiCall::Hosts)?, ApiAnswer::Hosts(_)));
    // Taking what it does not hold: not found, nothing recorded.
    let again = t.cli(&["operators", "ungrant", "bob", "changes.submit@web-*"])?;
    assert_eq!(again.status.code(), Some(79), "not found");

    let actions: Vec<String> = audit(&t, "default")?
        .into_iter()
        .filter(|r| r.action.starts_with("operator_"))
        .map(|r| format!("{} {}", r.action, r.operator))
        .collect();
    assert_eq!(
        actions,
        [
            "operator_added tower",
            "operator_added admin",
            "operator_granted admin",
            "operator_ungranted admin"
        ],
        "{actions:?}"
    );
    Ok(())
}

/// The attacks: a weaker operators.admin widening itself or a peer,
/// stripping a stronger one, and the admin cutting the tower's last
/// tenants.admin. Each refused, the refusals audited, nothing changed.
#[test]
fn grants_never_widen_never_strip_the_stronger_never_orphan_the_tower() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("regrant-hostile"))?;
    let dir = t.dir.path().to_path_buf();
    let maker = grants(&["operators.admin", "changes.submit", "hosts.read"])?;
    add_operator(&t, &dir, "acme", "maker", &maker)?;
    let weak = add_operator(
        &t,
        &dir,
        "acme",
        "weak",
        &grants(&["operators.admin", "hosts.read@web-*"])?,
    )?;
    let mut weak = client_with(&t, &weak, None)?;
    let grant = |name: &str, g: &str| -> anyhow::Result<ApiCall> {
        Ok(ApiCall::OperatorGrant {
            name: name.into(),
            grant: grants(&[g])?.remove(0),
        })
    };
    // Widening itself, or within the same verb a wider scope: refused.
    for (who, g) in [
        ("weak", "changes.submit"),
        ("weak", "hosts.read"),
        ("maker", "audit.read"),
    ] {
        assert_eq!(
            fault(weak.call(grant(who, g)?)),
            Some(ApiFaultKind::Forbidden),
            "{who} {g}"
        );
    }
    // tenants.admin is refused at the door already.
    assert_eq!(
        fault(weak.call(grant("weak", "tenants.admin")?)),
        Some(ApiFaultKind::Forbidden)
    );
    // Within its own grants it may give.
    assert_eq!(
        weak.call(grant("maker", "hosts.read@web-*")?)?,
        ApiAnswer::Done
    );
    // Stripping the stronger maker: refused, naming what it lacks.
    let strip = weak.call(ApiCall::OperatorUngrant {
        name: "maker".into(),
        grant: grants(&["operators.admin"])?.remove(0),
    });
    let Err(vigie_client::ClientError::Refused(f)) = strip else {
        anyhow::bail!("expected a refusal, got {strip:?}")
    };
    assert_eq!(f.kind, ApiFaultKind::Forbidden, "{f}");
    assert!(f.message.contains("changes.submit"), "{f}");

    // The tower's only tenants.admin keeps it.
    let out = t.cli(&["operators", "ungrant", "admin", "tenants.admin"])?;
    assert_eq!(out.status.code(), Some(80), "conflict");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("last who holds tenants.admin"), "{err}");
    assert!(ok(t.cli(&["operators", "--json"])?)?.contains("tenants.admin@*"));

    let acme = audit(&t, "acme")?;
    let refused = acme
        .iter()
        .filter(|r| r.action == "operator_refused" && r.operator == "weak")
        .count();
    assert_eq!(refused, 4, "{acme:?}");
    let granted: Vec<&str> = acme
        .iter()
        .filter(|r| r.action == "operator_granted")
        .map(|r| r.summary.as_str())
        .collect();
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert!(granted[0].contains("operator maker"), "{granted:?}");
    assert!(!acme.iter().any(|r| r.action == "operator_ungranted"));
    Ok(())
}
