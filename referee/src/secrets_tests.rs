//! Deploy secrets in the referee (issue 19): what is stored and audited
//! holds no value, who may set and read them, and a change with secrets
//! sealed only for the tower's deploys, for its one host's key.

use vigie_wire::change::{Action, ChangeSpec, Step};
use vigie_wire::deploy::{DeployAnswer, DeployCall, RolloutEnd};
use vigie_wire::secrets::{SealedVar, Secret, SecretsAnswer, SecretsCall};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind, Caller, Origin, Scope};

use crate::core::state::Core;
use crate::core::turn::Turn;
use crate::core::vault::VaultKey;

const VALUE: &[u8] = b"pa55-w0rd-never-shown";

fn call(
    tower: &mut Core,
    who: &Caller,
    call: ApiCall,
    db: &crate::shell::mem_store::MemStore,
    turn: &mut Turn,
) -> Result<ApiAnswer, ApiFault> {
    crate::shell::history::api(tower, who, call, db, std::time::Instant::now(), turn)
}

fn set(value: &[u8]) -> ApiCall {
    ApiCall::Secrets(SecretsCall::Set {
        app: "shop".into(),
        environment: "prod".into(),
        name: "db_password".into(),
        value: Secret::new(value.to_vec()),
    })
}

fn operator(name: &str) -> Caller {
    Caller {
        origin: Origin::Operator {
            home: "acme".into(),
        },
        ..Caller::internal("acme", name)
    }
}

fn holds(turn: &Turn, needle: &[u8]) -> bool {
    turn.writes.iter().any(|(k, v)| {
        let v = v.as_deref().unwrap_or_default();
        [k.as_slice(), v]
            .iter()
            .any(|b| b.windows(needle.len()).any(|w| w == needle))
    })
}

#[test]
fn a_secret_is_stored_and_audited_without_its_value() {
    let s = crate::shell::test_store::store();
    let mut tower = s.tower();
    let mut turn = Turn::default();
    let alice = operator("alice");
    let err = call(&mut tower, &alice, set(VALUE), &s.db, &mut turn).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Unavailable, "no key, no secrets");
    tower.secrets_mut().set_key(VaultKey::generate());
    for version in 1..=2 {
        match call(&mut tower, &alice, set(VALUE), &s.db, &mut turn) {
            Ok(ApiAnswer::Secrets(SecretsAnswer::Set {
                version: v,
                restart: None,
                ..
            })) => {
                assert_eq!(v, version)
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(!holds(&turn, VALUE), "the value is in a write");
    assert!(holds(&turn, b"secret db_password set (version 2)"));
    let list = ApiCall::Secrets(SecretsCall::List {
        app: "shop".into(),
        environment: "prod".into(),
    });
    match call(&mut tower, &alice, list.clone(), &s.db, &mut turn) {
        Ok(ApiAnswer::Secrets(SecretsAnswer::List(v))) => {
            assert_eq!(v.len(), 1);
            assert_eq!((v[0].version, v[0].set_by.as_str()), (2, "alice"));
        }
        other => panic!("{other:?}"),
    }
    // Scoped to some hosts, another tenant, a bad value: refused.
    let scoped = Caller {
        scope: Scope::Only(vec!["web-1".into()]),
        ..operator("carol")
    };
    let err = call(&mut tower, &scoped, list, &s.db, &mut turn).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Forbidden);
    let versions = ApiCall::Secrets(SecretsCall::Versions {
        tenant: "acme".into(),
        app: "shop".into(),
        environment: "prod".into(),
    });
    let err = call(&mut tower, &alice, versions, &s.db, &mut turn).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Forbidden, "the daemon's call only");
    let err = call(&mut tower, &alice, set(b"a\0b"), &s.db, &mut turn).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Invalid);
    assert!(!err.message.contains("a\0b"));
    let remove = ApiCall::Secrets(SecretsCall::Remove {
        app: "shop".into(),
        environment: "prod".into(),
        name: "db_password".into(),
    });
    let mallory = Caller::internal("evil", "mallory");
    let err = call(&mut tower, &mallory, remove, &s.db, &mut turn).unwrap_err();
    assert_eq!(
        err.kind,
        ApiFaultKind::NotFound,
        "another tenant's: not there"
    );
}

/// `secrets.admin@shop/prod` (issue 19): the grant is taken, and its
/// holder sets shop/prod's secrets; shop/staging's are refused, the
/// refusal audited in its tenant, nothing stored.
#[test]
fn secrets_admin_over_one_environment_reaches_that_environment_only() {
    let s = crate::shell::test_store::store();
    let mut tower = s.tower();
    tower.secrets_mut().set_key(VaultKey::generate());
    let mut turn = Turn::started();
    let add = ApiCall::OperatorAdd {
        name: "sam".into(),
        public: "s".repeat(40),
        grants: vec![vigie_wire::front::Grant::parse("secrets.admin@shop/prod").unwrap()],
    };
    let tower_caller = Caller::internal("acme", "tower");
    call(&mut tower, &tower_caller, add, &s.db, &mut turn).expect("the grant is taken");
    s.commit(&mut tower, &mut turn);
    let sam = Caller {
        scope: Scope::Only(vec!["shop/prod".into()]),
        ..operator("sam")
    };
    let mut turn = Turn::started();
    match call(&mut tower, &sam, set(VALUE), &s.db, &mut turn) {
        Ok(ApiAnswer::Secrets(SecretsAnswer::Set { version: 1, .. })) => {}
        other => panic!("{other:?}"),
    }
    s.commit(&mut tower, &mut turn);
    let staging = ApiCall::Secrets(SecretsCall::Set {
        app: "shop".into(),
        environment: "staging".into(),
        name: "db_password".into(),
        value: Secret::new(VALUE.to_vec()),
    });
    let mut turn = Turn::started();
    let err = call(&mut tower, &sam, staging, &s.db, &mut turn).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Forbidden, "{err}");
    assert!(err.message.contains("shop/staging"), "{err}");
    assert!(!holds(&turn, b"secret/acme/shop/staging"), "nothing stored");
    s.commit(&mut tower, &mut turn);
    let refused: Vec<_> = s
        .audit()
        .unwrap()
        .into_iter()
        .filter(|r| r.action == "operator_refused")
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(
        (refused[0].tenant.as_str(), refused[0].operator.as_str()),
        ("acme", "sam")
    );
    assert!(
        refused[0].summary.contains("shop/staging"),
        "{}",
        refused[0].summary
    );
    // Its list of shop/prod answers; staging's is refused too.
    let list = |env: &str| {
        ApiCall::Secrets(SecretsCall::List {
            app: "shop".into(),
            environment: env.into(),
        })
    };
    let mut turn = Turn::started();
    match call(&mut tower, &sam, list("prod"), &s.db, &mut turn) {
        Ok(ApiAnswer::Secrets(SecretsAnswer::List(v))) => assert_eq!(v.len(), 1),
        other => panic!("{other:?}"),
    }
    let err = call(&mut tower, &sam, list("staging"), &s.db, &mut turn).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Forbidden);
}

fn secret_change() -> ChangeSpec {
    ChangeSpec {
        title: "env".into(),
        steps: vec![Step {
            name: "env file".into(),
            action: Action::SecretFile {
                path: "/srv/env".into(),
                environment: "shop/prod".into(),
                content: Vec::new(),
                secrets: vec![SealedVar {
                    var: "DB_PASSWORD".into(),
                    name: "db_password".into(),
                    version: 0,
                    sealed: Vec::new(),
                }],
            },
        }],
    }
}

#[test]
fn only_the_towers_deploys_get_secrets_sealed_for_their_hosts_key() {
    let s = crate::shell::test_store::store();
    let mut tower = s.tower();
    let mut turn = Turn::default();
    tower.secrets_mut().set_key(VaultKey::generate());
    let daemon = Caller::internal("acme", "alice");
    call(&mut tower, &daemon, set(VALUE), &s.db, &mut turn).unwrap();
    let hosts = ["web-1".to_string()];
    let err = crate::core::handlers::secrets::seal_secrets(
        &tower,
        &operator("alice"),
        secret_change(),
        &hosts,
    )
    .unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Forbidden);
    let err =
        crate::core::handlers::secrets::seal_secrets(&tower, &daemon, secret_change(), &hosts)
            .unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Unavailable, "{err}");
    let two = ["web-1".to_string(), "web-2".to_string()];
    assert!(
        crate::core::handlers::secrets::seal_secrets(&tower, &daemon, secret_change(), &two)
            .is_err()
    );
    let agent = crypto_box::SecretKey::generate(&mut crypto_box::aead::OsRng);
    tower
        .secrets_mut()
        .set_host_key("web-1".into(), agent.public_key().to_bytes());
    let sealed =
        crate::core::handlers::secrets::seal_secrets(&tower, &daemon, secret_change(), &hosts)
            .unwrap();
    let Action::SecretFile { secrets, .. } = &sealed.steps[0].action else {
        panic!("{sealed:?}")
    };
    assert_eq!(secrets[0].version, 1);
    let opened = vigie_wire::secrets::open(&agent.to_bytes(), &secrets[0].sealed).unwrap();
    assert_eq!(opened.expose(), VALUE);
    // Another tenant's deploy naming the same secret finds none.
    let other = Caller::internal("evil", "mallory");
    let err = crate::core::handlers::secrets::seal_secrets(&tower, &other, secret_change(), &hosts)
        .unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::NotFound);
}

#[test]
fn setting_a_secret_a_deployed_environment_reads_restarts_it_when_the_caller_may_deploy() {
    let s = crate::shell::test_store::store();
    let mut tower = s.tower();
    let mut turn = Turn::default();
    tower.secrets_mut().set_key(VaultKey::generate());
    let env = "app: shop\nenvironment: prod\nhosts: web-1\nservices:\n  web:\n    repository: /r\n    revision: v1\n    start: run\n    health:\n      http: /h\n    env:\n      P: { secret: db_password }\n";
    let start = ApiCall::Deploy(DeployCall::Start {
        file: "env.yml".into(),
        text: env.into(),
        parallel: 1,
        from_maintenance: false,
        force_unlock: false,
        canary: 0,
    });
    let daemon = Caller::internal("acme", "alice");
    let Ok(ApiAnswer::Deploy(DeployAnswer::Started { id })) =
        call(&mut tower, &daemon, start, &s.db, &mut turn)
    else {
        panic!("started")
    };
    let end = ApiCall::Deploy(DeployCall::Progress {
        tenant: "acme".into(),
        app: "shop".into(),
        environment: "prod".into(),
        id,
        state: Vec::new(),
        said_before: 0,
        lines: Vec::new(),
        end: Some(RolloutEnd::Succeeded),
    });
    call(&mut tower, &daemon, end, &s.db, &mut turn).unwrap();
    // An operator whose own record has no changes.submit over every
    // host: refused whole, nothing stored.
    let before = turn.writes.len();
    let err = call(&mut tower, &operator("bob"), set(VALUE), &s.db, &mut turn).unwrap_err();
    assert_eq!(err.kind, ApiFaultKind::Forbidden, "{err}");
    assert_eq!(turn.writes.len(), before);
    match call(&mut tower, &daemon, set(VALUE), &s.db, &mut turn) {
        Ok(ApiAnswer::Secrets(SecretsAnswer::Set {
            restart: Some(_), ..
        })) => {}
        other => panic!("{other:?}"),
    }
    // The restart is the verb `rotate` of that secret (in place, no
    // fetch), not a new deploy.
    let deployd = Caller::internal(crate::TOWER_TENANT, "deployd");
    let rollouts = ApiCall::Deploy(DeployCall::Rollouts);
    let Ok(ApiAnswer::Deploy(DeployAnswer::Rollouts(open))) =
        call(&mut tower, &deployd, rollouts, &s.db, &mut turn)
    else {
        panic!("the open rollouts")
    };
    let verbs: Vec<_> = open.iter().map(|r| r.verb.clone()).collect();
    assert_eq!(
        verbs,
        [Some(vigie_wire::deploy::EnvVerb::Rotate {
            secret: "db_password".into()
        })]
    );
}
