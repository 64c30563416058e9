//! Tenants, operators and permissions at the front door. Every call here
//! goes through the majordomo with an operator's own key. The matrix: for
//! each verb, an operator of the same tenant with the permission, one
//! without it (holding every other), and one of another tenant with it —
//! every cell checked against the resources of tenant `acme`.

use std::path::Path;
use std::time::Duration;

use vigie_client::{ApiClient, ClientError};
use vigie_majordomo::keys::{write_new, KeyPair};
use vigie_tests::front::{add_operator, admin, client_with, fault, spec};
use vigie_tests::{Launcher, Setup};
use vigie_wire::front::{Grant, Verb};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind, ChangeState, Labels};

const WAIT: Duration = Duration::from_secs(30);

/// Adds operator `name` to `tenant` with `grants` (as the admin) and
/// returns a client holding its key.
fn operator(
    t: &Launcher,
    dir: &Path,
    tenant: &str,
    name: &str,
    grants: &[Grant],
) -> anyhow::Result<ApiClient> {
    operator_acting_in(t, dir, tenant, name, grants, None)
}

/// Like `operator`, its calls asking to act in tenant `act_in`.
fn operator_acting_in(
    t: &Launcher,
    dir: &Path,
    tenant: &str,
    name: &str,
    grants: &[Grant],
    act_in: Option<&str>,
) -> anyhow::Result<ApiClient> {
    let keys = add_operator(t, dir, tenant, name, grants)?;
    client_with(t, &keys, act_in)
}

fn grant(verb: Verb) -> Grant {
    Grant {
        verb,
        scope: "*".into(),
    }
}

/// Every permission but `verb` (and `tenants.admin`).
fn all_but(verb: Verb) -> Vec<Grant> {
    Verb::ALL
        .into_iter()
        .filter(|v| *v != verb && *v != Verb::TenantsAdmin)
        .map(grant)
        .collect()
}

/// A change queued on acme's offline host `a-1`.
fn queued(t: &Launcher) -> anyhow::Result<String> {
    let v = admin(t, Some("acme"))?.changes(ApiCall::Submit {
        spec: spec("queued")?,
        target: "a-1".into(),
    })?;
    Ok(v[0].id.clone())
}

/// The three operators of one row of the matrix.
struct Row {
    with: ApiClient,
    without: ApiClient,
    other: ApiClient,
}

fn row(t: &Launcher, dir: &Path, verb: Verb) -> anyhow::Result<Row> {
    let w = verb.word().replace('.', "-");
    Ok(Row {
        with: operator(t, dir, "acme", &format!("with-{w}"), &[grant(verb)])?,
        without: operator(t, dir, "acme", &format!("without-{w}"), &all_but(verb))?,
        other: operator(t, dir, "globex", &format!("other-{w}"), &[grant(verb)])?,
    })
}

#[test]
fn every_verb_with_and_without_permission_in_same_and_other_tenant() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("tenants"))?;
    let dir = t.dir.path().to_path_buf();
    // acme owns a-1 (no plug: its changes stay queued); globex owns g-1.
    let mut acme = admin(&t, Some("acme"))?;
    acme.call(ApiCall::HostAdd {
        host: "a-1".into(),
        labels: Labels::new(),
    })?;
    admin(&t, Some("globex"))?.call(ApiCall::HostAdd {
        host: "g-1".into(),
        labels: Labels::new(),
    })?;
    let forbidden = Some(ApiFaultKind::Forbidden);
    let not_found = Some(ApiFaultKind::NotFound);

    // changes.submit
    let mut r = row(&t, &dir, Verb::ChangesSubmit)?;
    let submit = |c: &mut ApiClient| {
        c.call(ApiCall::Submit {
            spec: spec("s")?,
            target: "a-1".into(),
        })
        .map_err(anyhow::Error::from)
    };
    assert!(matches!(submit(&mut r.with)?, ApiAnswer::Submitted(v) if v.len() == 1));
    let err = |r: anyhow::Result<ApiAnswer>| {
        r.err()
            .and_then(|e| e.downcast::<ClientError>().ok())
            .and_then(|e| fault(Err(e)))
    };
    assert_eq!(err(submit(&mut r.without)), forbidden);
    assert_eq!(err(submit(&mut r.other)), not_found, "a-1 is not globex's");

    // changes.cancel: the failing cells first, the change stays queued.
    let mut r = row(&t, &dir, Verb::ChangesCancel)?;
    let id = queued(&t)?;
    let cancel = |c: &mut ApiClient| c.call(ApiCall::Cancel { change: id.clone() });
    assert_eq!(fault(cancel(&mut r.other)), not_found);
    assert_eq!(fault(cancel(&mut r.without)), forbidden);
    let ApiAnswer::Changes(v) = cancel(&mut r.with)? else {
        anyhow::bail!("cancel answer")
    };
    assert_eq!(v[0].state, ChangeState::Cancelled);

    // changes.read: status, queue, and following a change.
    let mut r = row(&t, &dir, Verb::ChangesRead)?;
    let id = queued(&t)?;
    let status = |c: &mut ApiClient| {
        c.call(ApiCall::Status {
            change: Some(id.clone()),
            limit: 1,
        })
    };
    assert!(matches!(status(&mut r.with)?, ApiAnswer::Changes(v) if v[0].id == id));
    assert_eq!(fault(status(&mut r.without)), forbidden);
    assert_eq!(fault(status(&mut r.other)), not_found);
    let queue = |c: &mut ApiClient| c.call(ApiCall::Queue { host: "a-1".into() });
    assert!(matches!(queue(&mut r.with)?, ApiAnswer::Changes(v) if v.iter().any(|c| c.id == id)));
    assert_eq!(fault(queue(&mut r.without)), forbidden);
    assert_eq!(fault(queue(&mut r.other)), not_found);
    let latest = |c: &mut ApiClient| {
        c.changes(ApiCall::Status {
            change: None,
            limit: 1000,
        })
    };
    assert!(
        latest(&mut r.other)?.is_empty(),
        "globex sees none of acme's changes"
    );
    let follow = r
        .other
        .follow(std::slice::from_ref(&id), Some(WAIT), |_, _| {});
    assert!(
        matches!(&follow, Err(ClientError::Refused(f)) if f.kind == ApiFaultKind::NotFound),
        "another tenant cannot follow the change: {follow:?}"
    );

    // hosts.read
    let mut r = row(&t, &dir, Verb::HostsRead)?;
    let hosts = |c: &mut ApiClient| -> anyhow::Result<Vec<String>> {
        let ApiAnswer::Hosts(h) = c.call(ApiCall::Hosts)? else {
            anyhow::bail!("hosts answer")
        };
        Ok(h.into_iter().map(|h| h.id).collect())
    };
    assert_eq!(hosts(&mut r.with)?, vec!["a-1".to_string()]);
    assert_eq!(fault(r.without.call(ApiCall::Hosts)), forbidden);
    assert_eq!(hosts(&mut r.other)?, vec!["g-1".to_string()]);

    // hosts.admin: authorise an agent key for a-1.
    let mut r = row(&t, &dir, Verb::HostsAdmin)?;
    let key_add = |c: &mut ApiClient| {
        c.call(ApiCall::KeyAdd {
            host: "a-1".into(),
            public: KeyPair::generate().public_z85(),
        })
    };
    assert_eq!(fault(key_add(&mut r.without)), forbidden);
    assert!(
        matches!(
            fault(key_add(&mut r.other)),
            Some(ApiFaultKind::NotFound | ApiFaultKind::Conflict)
        ),
        "globex cannot touch a-1"
    );
    assert_eq!(key_add(&mut r.with)?, ApiAnswer::Done);
    let ApiAnswer::Keys(keys) = r.with.call(ApiCall::Keys)? else {
        anyhow::bail!("keys answer")
    };
    assert_eq!(keys.len(), 1, "exactly one key for a-1: {keys:?}");
    let ApiAnswer::Keys(theirs) = r.other.call(ApiCall::Keys)? else {
        anyhow::bail!("keys answer")
    };
    assert!(theirs.is_empty(), "globex sees no acme key: {theirs:?}");

    // audit.read
    let mut r = row(&t, &dir, Verb::AuditRead)?;
    let audit = |c: &mut ApiClient| {
        c.call(ApiCall::Audit {
            host: Some("a-1".into()),
            change: None,
            limit: 1000,
            filter: Default::default(),
        })
    };
    let ApiAnswer::Audit(records) = audit(&mut r.with)? else {
        anyhow::bail!("audit answer")
    };
    assert!(records.iter().any(|a| a.action == "submitted"));
    assert!(records.iter().all(|a| a.tenant == "acme"));
    assert_eq!(fault(audit(&mut r.without)), forbidden);
    assert_eq!(audit(&mut r.other)?, ApiAnswer::Audit(Vec::new()));

    // operators.admin
    let mut r = row(&t, &dir, Verb::OperatorsAdmin)?;
    let names = |c: &mut ApiClient| -> anyhow::Result<Vec<String>> {
        let ApiAnswer::Operators(o) = c.call(ApiCall::Operators)? else {
            anyhow::bail!("operators answer")
        };
        Ok(o.into_iter().map(|o| o.name).collect())
    };
    assert!(names(&mut r.with)?.contains(&"with-changes-submit".to_string()));
    assert_eq!(fault(r.without.call(ApiCall::Operators)), forbidden);
    let theirs = names(&mut r.other)?;
    assert!(
        !theirs.contains(&"with-changes-submit".to_string()),
        "{theirs:?}"
    );
    // The operator revoked holds nothing the revoker lacks.
    operator(&t, &dir, "acme", "peer", &[grant(Verb::OperatorsAdmin)])?;
    let revoke = |c: &mut ApiClient| {
        c.call(ApiCall::OperatorRevoke {
            name: "peer".into(),
        })
    };
    assert_eq!(fault(revoke(&mut r.other)), not_found);
    assert_eq!(fault(revoke(&mut r.without)), forbidden);
    assert_eq!(revoke(&mut r.with)?, ApiAnswer::Done);

    // tenants.admin: acting in another tenant.
    let mut as_acme = operator_acting_in(
        &t,
        &dir,
        "globex",
        "globex-root",
        &[grant(Verb::TenantsAdmin), grant(Verb::ChangesRead)],
        Some("acme"),
    )?;
    assert!(matches!(
        as_acme.call(ApiCall::Status { change: Some(id.clone()), limit: 1 })?,
        ApiAnswer::Changes(v) if v[0].id == id
    ));
    let mut cannot = operator_acting_in(
        &t,
        &dir,
        "globex",
        "globex-reader",
        &all_but(Verb::TenantsAdmin),
        Some("acme"),
    )?;
    assert_eq!(
        fault(cannot.call(ApiCall::Status {
            change: Some(id.clone()),
            limit: 1
        })),
        forbidden
    );
    // Nor may an operators.admin hand out tenants.admin.
    assert_eq!(
        fault(cannot.call(ApiCall::OperatorAdd {
            name: "sneaky".into(),
            public: KeyPair::generate().public_z85(),
            grants: vec![grant(Verb::TenantsAdmin)],
        })),
        forbidden
    );
    Ok(())
}

#[test]
fn host_scopes_narrow_a_permission_by_id_glob_and_labels() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("scopes"))?;
    let dir = t.dir.path().to_path_buf();
    let mut acme = admin(&t, Some("acme"))?;
    for (host, role) in [("web-1", "web"), ("web-2", "web"), ("db-1", "db")] {
        acme.call(ApiCall::HostAdd {
            host: host.into(),
            labels: [("role".to_string(), role.to_string())].into(),
        })?;
    }
    let g = |s: &str| Grant::parse(s).map_err(anyhow::Error::msg);
    let mut by_glob = operator(
        &t,
        &dir,
        "acme",
        "web-deployer",
        &[g("changes.submit@web-*")?, g("changes.read@web-*")?],
    )?;
    let mut by_label = operator(
        &t,
        &dir,
        "acme",
        "db-deployer",
        &[g("changes.submit@role=db")?],
    )?;
    let submit = |c: &mut ApiClient, target: &str| {
        c.call(ApiCall::Submit {
            spec: spec("scoped")?,
            target: target.into(),
        })
        .map_err(anyhow::Error::from)
    };
    let kind = |r: anyhow::Result<ApiAnswer>| match r {
        Err(e) => e.downcast::<ClientError>().ok().and_then(|e| fault(Err(e))),
        Ok(_) => None,
    };
    let ApiAnswer::Submitted(v) = submit(&mut by_glob, "role=web")? else {
        anyhow::bail!("submit answer")
    };
    assert_eq!(v.len(), 2);
    assert_eq!(
        kind(submit(&mut by_glob, "db-1")),
        Some(ApiFaultKind::Forbidden)
    );
    // A target reaching outside the scope is refused whole: nothing queued.
    assert_eq!(
        kind(submit(&mut by_glob, "*")),
        Some(ApiFaultKind::Forbidden)
    );
    assert!(matches!(submit(&mut by_label, "db-1")?, ApiAnswer::Submitted(v) if v.len() == 1));
    assert_eq!(
        kind(submit(&mut by_label, "web-1")),
        Some(ApiFaultKind::Forbidden)
    );
    // Reading is narrowed the same way: db-1's change is not listed.
    let seen = by_glob.changes(ApiCall::Status {
        change: None,
        limit: 100,
    })?;
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(seen.iter().all(|c| c.host.starts_with("web-")));
    let ApiAnswer::Changes(all) = acme.call(ApiCall::Status {
        change: None,
        limit: 100,
    })?
    else {
        anyhow::bail!("status answer")
    };
    assert_eq!(all.len(), 3, "the refused submissions queued nothing");
    Ok(())
}

#[test]
fn the_local_cli_is_the_admin_and_a_stranger_key_is_refused_clearly() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("cli"))?;
    // The CLI found the config `vigie start` wrote in the XDG config dir.
    let out = t.cli(&["operators", "--json"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout)?;
    assert!(text.contains("\"admin\""), "{text}");
    // An operator whose key the tower does not know gets a clear error.
    let stranger = t.dir.path().join("stranger.key");
    write_new(&stranger)?;
    let out = t.cli(&["hosts", "--identity", stranger.to_str().unwrap_or_default()])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not accept this operator's key"), "{err}");
    // Revoked, the admin's own operator cannot call any more.
    let bob = t.dir.path().join("bob.key");
    let pair = write_new(&bob)?;
    let added = t.cli(&[
        "operators",
        "add",
        "bob",
        "--key",
        &pair.public_z85(),
        "--grant",
        "hosts.read",
    ])?;
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let bob_arg = bob.to_str().unwrap_or_default();
    assert!(t.cli(&["hosts", "--identity", bob_arg])?.status.success());
    assert!(t.cli(&["operators", "revoke", "bob"])?.status.success());
    let out = t.cli(&["hosts", "--identity", bob_arg])?;
    assert!(!out.status.success(), "a revoked operator is refused");
    // Every one of these modifications is audited, with who did it.
    let audit = t.cli(&["audit", "--json"])?;
    let text = String::from_utf8(audit.stdout)?;
    assert!(
        text.contains("operator_added") && text.contains("operator_revoked"),
        "{text}"
    );
    Ok(())
}

/// The message of a refusal, failing the test for anything else.
fn refusal(r: Result<ApiAnswer, ClientError>) -> anyhow::Result<vigie_wire::tower::ApiFault> {
    match r {
        Err(ClientError::Refused(f)) => Ok(f),
        other => anyhow::bail!("expected a refusal, got {other:?}"),
    }
}

/// Issue 18 item 7: operators.admin manages the operators one holds every
/// grant of. A peer the maker minted (with operators.admin and less) can
/// neither revoke its maker — and so add it again under its own key — nor
/// rotate its key; each refusal is audited in the tenant, and its message
/// names no other tenant. The maker keeps working throughout.
#[test]
fn a_minted_peer_cannot_revoke_or_take_over_its_maker() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("takeover"))?;
    let dir = t.dir.path().to_path_buf();
    admin(&t, Some("globex"))?.call(ApiCall::HostAdd {
        host: "g-1".into(),
        labels: Labels::new(),
    })?;
    let g = |s: &str| Grant::parse(s).map_err(anyhow::Error::msg);
    let maker_grants = [
        g("operators.admin")?,
        g("changes.submit")?,
        g("hosts.read")?,
    ];
    let mut maker = operator(&t, &dir, "acme", "maker", &maker_grants)?;
    let peer_keys = KeyPair::generate();
    maker.call(ApiCall::OperatorAdd {
        name: "minted".into(),
        public: peer_keys.public_z85(),
        grants: vec![g("operators.admin")?, g("hosts.read")?],
    })?;
    let mut peer = client_with(&t, &peer_keys, None)?;

    let revoked = refusal(peer.call(ApiCall::OperatorRevoke {
        name: "maker".into(),
    }))?;
    assert_eq!(revoked.kind, ApiFaultKind::Forbidden, "{revoked}");
    let mine = KeyPair::generate();
    let rotated = refusal(peer.call(ApiCall::OperatorRotateKey {
        name: "maker".into(),
        public: mine.public_z85(),
    }))?;
    assert_eq!(rotated.kind, ApiFaultKind::Forbidden, "{rotated}");
    for f in [&revoked, &rotated] {
        assert!(
            f.message.contains("changes.submit"),
            "names what is lacking: {f}"
        );
        assert!(!f.message.contains("globex"), "{f}");
    }
    // The two-call takeover: the name is not free to add again.
    let readd = refusal(peer.call(ApiCall::OperatorAdd {
        name: "maker".into(),
        public: mine.public_z85(),
        grants: vec![g("hosts.read")?],
    }))?;
    assert_eq!(readd.kind, ApiFaultKind::Conflict, "{readd}");
    // The maker still calls with its own key, and the new key gets nowhere.
    assert!(matches!(maker.call(ApiCall::Hosts)?, ApiAnswer::Hosts(_)));
    let stolen = client_with(&t, &mine, None)?.call(ApiCall::Hosts);
    assert!(matches!(stolen, Err(ClientError::Door(_))), "{stolen:?}");

    // A tenants.admin of another tenant lacking the maker's grants is
    // refused the same way, and nothing it is told names globex.
    let mut outsider = operator_acting_in(
        &t,
        &dir,
        "globex",
        "root",
        &[grant(Verb::TenantsAdmin), grant(Verb::OperatorsAdmin)],
        Some("acme"),
    )?;
    let f = refusal(outsider.call(ApiCall::OperatorRevoke {
        name: "maker".into(),
    }))?;
    assert_eq!(f.kind, ApiFaultKind::Forbidden, "{f}");
    assert!(!f.message.contains("globex"), "{f}");

    // The refusals are in acme's audit, with who tried what; not in globex's.
    let audit = |tenant: &str| -> anyhow::Result<Vec<vigie_wire::tower::AuditRecord>> {
        let ApiAnswer::Audit(v) = admin(&t, Some(tenant))?.call(ApiCall::Audit {
            host: None,
            change: None,
            limit: 1000,
            filter: Default::default(),
        })?
        else {
            anyhow::bail!("audit answer")
        };
        Ok(v.into_iter()
            .filter(|r| r.action == "operator_refused")
            .collect())
    };
    let acme = audit("acme")?;
    let who: Vec<&str> = acme.iter().map(|r| r.operator.as_str()).collect();
    assert_eq!(who, ["minted", "minted", "root"], "{acme:?}");
    assert!(
        acme.iter().all(|r| r.summary.contains("operator maker")),
        "{acme:?}"
    );
    assert!(audit("globex")?.is_empty());
    // The maker, holding every grant of its peer, may revoke it.
    assert_eq!(
        maker.call(ApiCall::OperatorRevoke {
            name: "minted".into()
        })?,
        ApiAnswer::Done
    );
    Ok(())
}

/// A deployment's record as the deployer stores it, run on `hosts`.
fn deployment(app: &str, hosts: &[&str]) -> anyhow::Result<ApiCall> {
    use vigie_deployer::{DeployRecord, EnvKey, EnvRecord, HostState, Outcome, Part};
    let part = |s: &str| Part::parse(s).map_err(anyhow::Error::msg);
    let mut rec = EnvRecord::new(EnvKey {
        app: part(app)?,
        environment: part("prod")?,
    });
    for h in hosts {
        rec.hosts.insert((*h).to_owned(), HostState::default());
    }
    rec.history.push(DeployRecord {
        number: 1,
        bumped: Vec::new(),
        changes: hosts
            .iter()
            .map(|h| ((*h).to_owned(), "c".to_owned()))
            .collect(),
        outcome: Outcome::Succeeded,
        maintenance: false,
        run: None,
        at_ms: None,
        operator: None,
        revisions: Default::default(),
        version: None,
        verb: None,
    });
    Ok(ApiCall::Deploy(vigie_wire::deploy::DeployCall::Record {
        app: app.into(),
        environment: "prod".into(),
        expected: 0,
        record: rec.to_json()?,
    }))
}

/// Issue 18 item 7: `deployments list` follows the reader's scope. A
/// reader scoped to the web hosts sees the deployment that runs on web
/// hosts only; one that also runs on db-1 does not exist for it.
#[test]
fn deployments_list_shows_a_scoped_reader_only_what_is_inside_its_scope() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("deployscope"))?;
    let dir = t.dir.path().to_path_buf();
    let mut acme = admin(&t, Some("acme"))?;
    for (host, role) in [("web-1", "web"), ("web-2", "web"), ("db-1", "db")] {
        acme.call(ApiCall::HostAdd {
            host: host.into(),
            labels: [("role".to_string(), role.to_string())].into(),
        })?;
    }
    acme.call(deployment("shop", &["web-1", "web-2"])?)?;
    acme.call(deployment("crm", &["web-1", "db-1"])?)?;
    let list = |c: &mut ApiClient| -> anyhow::Result<Vec<String>> {
        let call = ApiCall::Deploy(vigie_wire::deploy::DeployCall::List);
        let ApiAnswer::Deploy(vigie_wire::deploy::DeployAnswer::Deployments(all)) = c.call(call)?
        else {
            anyhow::bail!("deployments answer")
        };
        let mut apps: Vec<String> = all.into_iter().map(|d| d.app).collect();
        apps.sort();
        Ok(apps)
    };
    let g = |s: &str| Grant::parse(s).map_err(anyhow::Error::msg);
    let mut web = operator(
        &t,
        &dir,
        "acme",
        "web-reader",
        &[g("changes.read@role=web")?],
    )?;
    let mut db = operator(&t, &dir, "acme", "db-reader", &[g("changes.read@db-*")?])?;
    let mut all = operator(&t, &dir, "acme", "reader", &[g("changes.read")?])?;
    assert_eq!(list(&mut all)?, ["crm", "shop"]);
    assert_eq!(list(&mut web)?, ["shop"], "crm runs on db-1 too");
    assert!(list(&mut db)?.is_empty(), "both run on web hosts");
    Ok(())
}
