//! The web console's credentials at the referee: a ticket is spent once
//! (twice in one turn too), only the tower redeems and authenticates, a
//! session ends when revoked or when its operator's key is rotated.

use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFaultKind, Caller, Origin, Scope};
use vigie_wire::web::{CredentialKind, WebAnswer, WebCall};

use crate::core::state::Core;
use crate::core::turn::Turn;

fn admin() -> Caller {
    Caller {
        tenant: "default".into(),
        operator: "admin".into(),
        scope: Scope::Only(Vec::new()),
        origin: Origin::Operator {
            home: "default".into(),
        },
    }
}

fn tower_caller() -> Caller {
    Caller::internal("default", "web")
}

struct F {
    store: crate::shell::test_store::TestStore,
    tower: Core,
}

impl F {
    fn new() -> Self {
        let store = crate::shell::test_store::store();
        let mut tower = store.tower();
        let mut t = Turn::started();
        assert!(crate::core::handlers::operators::bootstrap_admin(
            &mut tower,
            &"a".repeat(40),
            &mut t
        )
        .unwrap());
        store.commit(&mut tower, &mut t);
        F { store, tower }
    }

    /// `calls` in one turn, then stored.
    fn turn(&mut self, calls: Vec<(Caller, WebCall)>) -> Vec<Result<ApiAnswer, ApiFaultKind>> {
        let mut t = Turn::started();
        let now = std::time::Instant::now();
        let out = calls
            .into_iter()
            .map(|(c, w)| {
                crate::shell::history::api(
                    &mut self.tower,
                    &c,
                    ApiCall::Web(w),
                    &self.store.db,
                    now,
                    &mut t,
                )
                .map_err(|f| f.kind)
            })
            .collect();
        self.store.commit(&mut self.tower, &mut t);
        out
    }

    fn one(&mut self, c: Caller, w: WebCall) -> Result<ApiAnswer, ApiFaultKind> {
        self.turn(vec![(c, w)]).remove(0)
    }

    fn secret(&mut self, c: Caller, w: WebCall) -> String {
        match self.one(c, w) {
            Ok(ApiAnswer::Web(WebAnswer::Issued { secret, .. })) => secret,
            other => panic!("not issued: {other:?}"),
        }
    }
}

fn redeem(ticket: &str) -> WebCall {
    WebCall::Redeem {
        ticket: ticket.into(),
        valid_ms: 60_000,
    }
}

fn auth(secret: &str) -> WebCall {
    WebCall::Authenticate {
        secret: secret.into(),
    }
}

#[test]
fn a_ticket_is_spent_by_its_first_redemption_even_in_the_same_turn() {
    let mut f = F::new();
    let ticket = f.secret(admin(), WebCall::Login);
    let both = f.turn(vec![
        (tower_caller(), redeem(&ticket)),
        (tower_caller(), redeem(&ticket)),
    ]);
    assert!(both[0].is_ok(), "{:?}", both[0]);
    assert_eq!(both[1], Err(ApiFaultKind::Forbidden));
    assert_eq!(
        f.one(tower_caller(), redeem(&ticket)),
        Err(ApiFaultKind::Forbidden)
    );
    // A ticket is no session.
    let t2 = f.secret(admin(), WebCall::Login);
    assert_eq!(
        f.one(tower_caller(), auth(&t2)),
        Err(ApiFaultKind::Forbidden)
    );
}

#[test]
fn only_the_tower_redeems_and_authenticates() {
    let mut f = F::new();
    let ticket = f.secret(admin(), WebCall::Login);
    assert_eq!(
        f.one(admin(), redeem(&ticket)),
        Err(ApiFaultKind::Forbidden)
    );
    let session = f.secret(tower_caller(), redeem(&ticket));
    assert_eq!(f.one(admin(), auth(&session)), Err(ApiFaultKind::Forbidden));
    match f.one(tower_caller(), auth(&session)) {
        Ok(ApiAnswer::Web(WebAnswer::Holder { view, operator })) => {
            assert_eq!(view.kind, CredentialKind::Session);
            assert_eq!(operator.name, "admin");
        }
        other => panic!("{other:?}"),
    }
    // One character off: nothing.
    let mut forged = session.clone();
    forged.pop();
    forged.push(if session.ends_with('0') { '1' } else { '0' });
    assert_eq!(
        f.one(tower_caller(), auth(&forged)),
        Err(ApiFaultKind::Forbidden)
    );
}

#[test]
fn a_revoked_token_or_a_rotated_key_holds_nothing() {
    let mut f = F::new();
    let token = f.secret(
        admin(),
        WebCall::TokenCreate {
            valid_ms: 3_600_000,
            label: "ci".into(),
        },
    );
    assert!(f.one(tower_caller(), auth(&token)).is_ok());
    let id = token.split('.').next().unwrap_or_default().to_owned();
    assert!(f.one(admin(), WebCall::Revoke { id }).is_ok());
    assert_eq!(
        f.one(tower_caller(), auth(&token)),
        Err(ApiFaultKind::Forbidden)
    );

    let other = f.secret(
        admin(),
        WebCall::TokenCreate {
            valid_ms: 3_600_000,
            label: String::new(),
        },
    );
    f.tower.access_mut().operators_mut()[0].public = "b".repeat(40);
    assert_eq!(
        f.one(tower_caller(), auth(&other)),
        Err(ApiFaultKind::Forbidden)
    );
}
