//! The trust boundaries, probed as an attacker would: an agent with a
//! valid key that lies about its labels, operators who reach beyond their
//! grants, a watcher who was revoked, a client whose reply was lost,
//! unknown keys and malformed frames in floods. Everything goes through
//! the real majordomo (CURVE), referee and Escalator.

use std::time::Duration;

use vigie_client::{ApiClient, ClientError, Incoming, Link};
use vigie_majordomo::keys::KeyPair;
use vigie_tests::front::{add_operator, admin, client_with, fault, grants, spec, tower_key};
use vigie_tests::{Launcher, Setup};
use vigie_wire::front::{FrontIn, FrontOut};
use vigie_wire::tower::{
    ApiAnswer, ApiCall, ApiFaultKind, Caller, ChangeState, IdemKey, Labels, Origin, PlugEvent,
};

const WAIT: Duration = Duration::from_secs(30);

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A CURVE DEALER to the front door holding `keys`.
fn raw_peer(t: &Launcher, keys: &KeyPair) -> anyhow::Result<(zmq::Context, zmq::Socket)> {
    let ctx = zmq::Context::new();
    let d = ctx.socket(zmq::DEALER)?;
    d.set_curve_serverkey(&tower_key(t)?)?;
    d.set_curve_publickey(&keys.public)?;
    d.set_curve_secretkey(&keys.secret)?;
    d.set_linger(0)?;
    d.connect(&t.endpoint("majordomo"))?;
    Ok((ctx, d))
}

#[test]
fn a_host_cannot_choose_its_own_labels() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("labels").host("db-1", &[("role", "db")]))?;
    let mut admin = admin(&t, None)?;
    let agent = KeyPair::generate();
    admin.call(ApiCall::HostAdd {
        host: "far-1".into(),
        labels: labels(&[("role", "web")]),
    })?;
    admin.call(ApiCall::KeyAdd {
        host: "far-1".into(),
        public: agent.public_z85(),
    })?;
    // The agent's key is valid; its heartbeat claims role=db.
    let (_ctx, d) = raw_peer(&t, &agent)?;
    let lie = FrontIn::Plug(PlugEvent::Heartbeat {
        host: "far-1".into(),
        incarnation: 1,
        labels: labels(&[("role", "db")]),
        busy: None,
        refusing: None,
    });
    d.send(vigie_wire::encode(&lie)?, 0)?;
    t.events().wait_n("host_online far-1", 1, WAIT, |e| {
        e.name == "host_online" && e.str("host") == Some("far-1")
    })?;
    let ApiAnswer::Hosts(hosts) = admin.call(ApiCall::Hosts)? else {
        anyhow::bail!("hosts answer")
    };
    let far = hosts
        .iter()
        .find(|h| h.id == "far-1")
        .ok_or_else(|| anyhow::anyhow!("far-1 listed"))?;
    assert_eq!(far.labels, labels(&[("role", "web")]), "the tower's labels");
    assert_eq!(far.reported, labels(&[("role", "db")]), "shown as reported");
    // A change for the db hosts (a secret inside) reaches db-1 only.
    let v = admin.changes(ApiCall::Submit {
        spec: spec("db password")?,
        target: "role=db".into(),
    })?;
    let hosts: Vec<&str> = v.iter().map(|c| c.host.as_str()).collect();
    assert_eq!(hosts, vec!["db-1"]);
    // The setup's labels came from the launcher, and an operator's label
    // change is audited with before and after.
    admin.call(ApiCall::HostLabel {
        host: "far-1".into(),
        set: labels(&[("role", "cache")]),
        remove: Vec::new(),
    })?;
    let ApiAnswer::Audit(records) = admin.call(ApiCall::Audit {
        host: Some("far-1".into()),
        change: None,
        limit: 100,
        filter: Default::default(),
    })?
    else {
        anyhow::bail!("audit answer")
    };
    assert!(
        records
            .iter()
            .any(|r| r.action == "labels_set" && r.summary.contains("role=web] -> [role=cache")),
        "{records:?}"
    );
    Ok(())
}

#[test]
fn operators_admin_grants_no_more_than_it_holds_and_takes_over_nobody() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("grants"))?;
    let dir = t.dir.path().to_path_buf();
    let boss = add_operator(
        &t,
        &dir,
        "acme",
        "boss",
        &grants(&[
            "operators.admin",
            "hosts.admin",
            "changes.submit",
            "changes.read",
        ])?,
    )?;
    let narrow = add_operator(
        &t,
        &dir,
        "acme",
        "narrow",
        &grants(&["operators.admin", "changes.read@web-*"])?,
    )?;
    let mut narrow = client_with(&t, &narrow, None)?;
    let add = |c: &mut ApiClient, name: &str, g: &[&str]| -> anyhow::Result<Option<ApiFaultKind>> {
        Ok(fault(c.call(ApiCall::OperatorAdd {
            name: name.into(),
            public: KeyPair::generate().public_z85(),
            grants: grants(g)?,
        })))
    };
    let forbidden = Some(ApiFaultKind::Forbidden);
    // Wider verbs or scopes than its own: refused, nothing stored.
    assert_eq!(add(&mut narrow, "x1", &["changes.submit"])?, forbidden);
    assert_eq!(add(&mut narrow, "x2", &["hosts.admin@*"])?, forbidden);
    assert_eq!(
        add(&mut narrow, "x3", &["changes.read"])?,
        forbidden,
        "wider scope"
    );
    // Within its own: fine. The same name again: a conflict, not a takeover.
    assert_eq!(add(&mut narrow, "reader", &["changes.read@web-*"])?, None);
    assert_eq!(
        add(&mut narrow, "reader", &["changes.read@web-*"])?,
        Some(ApiFaultKind::Conflict)
    );
    // Nor rotate the key of someone holding more (that is a takeover).
    let rotate = |c: &mut ApiClient, name: &str, public: String| {
        fault(c.call(ApiCall::OperatorRotateKey {
            name: name.into(),
            public,
        }))
    };
    let mine = KeyPair::generate();
    assert_eq!(rotate(&mut narrow, "boss", mine.public_z85()), forbidden);
    // The tower's admin is not in its tenant: it does not exist for it.
    assert_eq!(
        rotate(&mut narrow, "admin", mine.public_z85()),
        Some(ApiFaultKind::NotFound)
    );
    // The referee enforces it too, whatever the front door let through.
    let mut direct = ApiClient::direct(
        &t.endpoint("api"),
        &t.endpoint("orders"),
        Caller {
            tenant: "acme".into(),
            operator: "narrow".into(),
            scope: vigie_wire::tower::Scope::All,
            origin: Origin::Operator {
                home: "acme".into(),
            },
        },
    )?;
    assert_eq!(add(&mut direct, "x4", &["hosts.admin"])?, forbidden);
    let ApiAnswer::Operators(ops) = admin(&t, Some("acme"))?.call(ApiCall::Operators)? else {
        anyhow::bail!("operators answer")
    };
    let names: Vec<&str> = ops.iter().map(|o| o.name.as_str()).collect();
    assert!(!names.iter().any(|n| n.starts_with('x')), "{names:?}");

    // Rotation is explicit, audited, and the old key stops at once.
    let reader_keys = KeyPair::generate();
    let mut boss = client_with(&t, &boss, None)?;
    boss.call(ApiCall::OperatorRotateKey {
        name: "narrow".into(),
        public: reader_keys.public_z85(),
    })?;
    let refused = narrow.call(ApiCall::Operators);
    assert!(
        matches!(refused, Err(ClientError::Door(_))),
        "the old key is refused: {refused:?}"
    );
    assert!(matches!(
        client_with(&t, &reader_keys, None)?.call(ApiCall::Operators)?,
        ApiAnswer::Operators(_)
    ));
    // A key is one identity: not an operator's and an agent's, not two
    // operators'. The refusal names nobody.
    let admin_public = std::fs::read_to_string(t.data_dir().join("keys/admin.key.pub"))?;
    let mut acme_admin = admin(&t, Some("acme"))?;
    let r = acme_admin.call(ApiCall::OperatorAdd {
        name: "copycat".into(),
        public: admin_public.trim().to_owned(),
        grants: grants(&["hosts.read"])?,
    });
    assert_eq!(fault(r), Some(ApiFaultKind::Conflict));
    let r = acme_admin.call(ApiCall::KeyAdd {
        host: "a-1".into(),
        public: reader_keys.public_z85(),
    });
    match r {
        Err(ClientError::Refused(f)) => {
            assert_eq!(f.kind, ApiFaultKind::Conflict);
            assert!(
                !f.message.contains("narrow") && !f.message.contains("acme"),
                "{f}"
            );
        }
        other => anyhow::bail!("an operator's key as an agent's: {other:?}"),
    }
    // Names are per tenant: globex may have its own "boss".
    add_operator(&t, &dir, "globex", "boss", &grants(&["hosts.read"])?)?;

    // The last holder of tenants.admin cannot be revoked, not even by itself.
    let r = admin(&t, None)?.call(ApiCall::OperatorRevoke {
        name: "admin".into(),
    });
    assert_eq!(fault(r), Some(ApiFaultKind::Conflict));
    assert!(matches!(
        admin(&t, None)?.call(ApiCall::Operators)?,
        ApiAnswer::Operators(_)
    ));
    let audit = t.cli(&["audit", "--json", "--tenant", "acme"])?;
    let text = String::from_utf8(audit.stdout)?;
    assert!(text.contains("operator_key_rotated"), "{text}");
    Ok(())
}

#[test]
fn a_revoked_operator_stops_receiving_the_updates_it_watched() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("watchcut"))?;
    let dir = t.dir.path().to_path_buf();
    let mut admin = admin(&t, None)?;
    // a-1 has no plug: its change stays queued until cancelled.
    admin.call(ApiCall::HostAdd {
        host: "a-1".into(),
        labels: Labels::new(),
    })?;
    let id = admin.changes(ApiCall::Submit {
        spec: spec("watched")?,
        target: "a-1".into(),
    })?[0]
        .id
        .clone();
    let reader = grants(&["changes.read"])?;
    let eve_keys = add_operator(&t, &dir, "default", "eve", &reader)?;
    let bob_keys = add_operator(&t, &dir, "default", "bob", &reader)?;
    let link = |k: &KeyPair| {
        vigie_majordomo::operator::FrontLink::connect(
            &t.endpoint("majordomo"),
            &tower_key(&t)?,
            k,
            None,
        )
        .map_err(anyhow::Error::from)
    };
    let status = ApiCall::Status {
        change: Some(id.clone()),
        limit: 1,
    };
    let (mut eve, mut bob) = (link(&eve_keys)?, link(&bob_keys)?);
    for l in [&mut eve, &mut bob] {
        l.send(1, &status, true, None)?;
        match l.recv(WAIT)? {
            Some(Incoming::Reply(r)) => assert!(r.body.is_ok(), "{r:?}"),
            other => anyhow::bail!("watch answer: {other:?}"),
        }
    }
    admin.call(ApiCall::OperatorRevoke { name: "eve".into() })?;
    // Eve is told at once; her watch is over.
    match eve.recv(WAIT) {
        Err(ClientError::Door(m)) => assert!(m.contains("revoked"), "{m}"),
        other => anyhow::bail!("eve after revocation: {other:?}"),
    }
    admin.call(ApiCall::Cancel { change: id.clone() })?;
    // Bob, still an operator, sees the cancellation...
    loop {
        match bob.recv(WAIT)? {
            Some(Incoming::Update(v)) if v.state == ChangeState::Cancelled => break,
            Some(_) => continue,
            None => anyhow::bail!("bob never saw the cancellation"),
        }
    }
    // ...sent in the same majordomo turn as it would have been to eve:
    // nothing is on her socket.
    match eve.recv(Duration::from_millis(500)) {
        Ok(None) | Err(ClientError::Door(_)) => {}
        Ok(Some(other)) => anyhow::bail!("eve still received {other:?}"),
        Err(e) => anyhow::bail!("eve: {e}"),
    }
    let cut = t.events().count("watch_cut");
    assert!(cut >= 1, "the majordomo reports the watch it cut");
    Ok(())
}

#[test]
fn a_retried_call_acts_once_even_across_a_referee_restart() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("idem"))?;
    let mut adm = admin(&t, None)?;
    adm.call(ApiCall::HostAdd {
        host: "a-1".into(),
        labels: Labels::new(),
    })?;
    let key = IdemKey::try_from("retry-1".to_string()).map_err(anyhow::Error::msg)?;
    let submit = ApiCall::Submit {
        spec: spec("once")?,
        target: "a-1".into(),
    };
    let first = adm.call_idempotent(submit.clone(), &key)?;
    // The reply was "lost": the client sends the same call again.
    let again = adm.call_idempotent(submit.clone(), &key)?;
    let ids = |a: &ApiAnswer| match a {
        ApiAnswer::Submitted(v) => v.iter().map(|c| c.id.clone()).collect::<Vec<_>>(),
        _ => Vec::new(),
    };
    assert_eq!(ids(&first).len(), 1);
    assert_eq!(ids(&first), ids(&again));
    t.kill_child("referee")?;
    let after = admin(&t, None)?.call_idempotent(submit, &key)?;
    assert_eq!(ids(&first), ids(&after), "the key survives a referee crash");
    let ApiAnswer::Changes(queue) = adm.call(ApiCall::Queue { host: "a-1".into() })? else {
        anyhow::bail!("queue answer")
    };
    assert_eq!(queue.len(), 1, "one change queued: {queue:?}");
    // The same key for another call is refused, not silently replayed.
    let other = adm.call_idempotent(
        ApiCall::Submit {
            spec: spec("another")?,
            target: "a-1".into(),
        },
        &key,
    );
    assert_eq!(fault(other), Some(ApiFaultKind::Conflict));
    Ok(())
}

#[test]
fn floods_of_unknown_keys_and_bad_frames_cost_a_bounded_amount() -> anyhow::Result<()> {
    let t = Launcher::start(Setup::new("floods"))?;
    // 300 strangers knock from one address.
    let ctx = zmq::Context::new();
    let mut socks = Vec::new();
    for _ in 0..300 {
        let k = KeyPair::generate();
        let d = ctx.socket(zmq::DEALER)?;
        d.set_curve_serverkey(&tower_key(&t)?)?;
        d.set_curve_publickey(&k.public)?;
        d.set_curve_secretkey(&k.secret)?;
        d.set_linger(0)?;
        d.connect(&t.endpoint("majordomo"))?;
        socks.push(d);
    }
    // The door's batches say what its limits dropped; the referee logs
    // each batch (the limits' window is a minute: these are the first).
    t.events()
        .wait_n("keys_pending (some dropped)", 1, WAIT, |e| {
            e.name == "keys_pending" && e.u64("dropped").is_some_and(|d| d > 0)
        })?;
    drop(socks);
    let ApiAnswer::Keys(keys) = admin(&t, None)?.call(ApiCall::Keys)? else {
        anyhow::bail!("keys answer")
    };
    assert!(
        (1..=10).contains(&keys.len()),
        "at most 10 pending keys per source and minute, got {}",
        keys.len()
    );
    let ApiAnswer::Audit(records) = admin(&t, None)?.call(ApiCall::Audit {
        host: None,
        change: None,
        limit: 1000,
        filter: Default::default(),
    })?
    else {
        anyhow::bail!("audit answer")
    };
    let knocks = records
        .iter()
        .filter(|r| r.action.starts_with("key"))
        .count();
    assert!(knocks <= 5, "knocks audited in aggregate: {knocks} records");
    let refused_logs = t.events().count("handshake_refused");
    assert!(
        refused_logs <= 50,
        "{refused_logs} handshake_refused lines for 300 knocks"
    );

    // An accepted operator floods malformed frames: a few are answered and
    // logged, the rest counted; the door keeps serving.
    let keys = add_operator(
        &t,
        t.dir.path(),
        "default",
        "noisy",
        &grants(&["hosts.read"])?,
    )?;
    let (_ctx2, d) = raw_peer(&t, &keys)?;
    for _ in 0..2_000 {
        d.send(&b"garbage"[..], 0)?;
    }
    t.events()
        .wait_n("frames_rejected", 1, WAIT, |e| e.name == "frames_rejected")?;
    let logged = t.events().count("frame_rejected");
    assert!(
        logged <= 10,
        "{logged} frame_rejected lines for 2,000 bad frames"
    );
    let mut replies = 0;
    d.set_rcvtimeo(200)?;
    while let Ok(bytes) = d.recv_bytes(0) {
        if matches!(
            vigie_wire::decode::<FrontOut>(&bytes)?,
            FrontOut::Refused { .. }
        ) {
            replies += 1;
        }
    }
    assert!(
        (1..=10).contains(&replies),
        "{replies} refusals sent back for 2,000 bad frames"
    );
    assert!(matches!(
        client_with(&t, &keys, None)?.call(ApiCall::Hosts)?,
        ApiAnswer::Hosts(_)
    ));
    assert_eq!(t.events().count("child_exited"), 0, "no daemon crashed");
    Ok(())
}
