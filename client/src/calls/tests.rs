//! A typed call goes on the wire as the untyped one did, and takes only
//! its own answer.

use vigie_wire::catalog::CatalogAnswer;
use vigie_wire::page::{PageAsk, PageInfo};
use vigie_wire::tower::{ApiAnswer, ApiCall};

use super::{catalog, Call, Cancel, Hosts, Paged, Status};

#[test]
fn a_typed_call_is_the_wire_call() {
    let c: ApiCall = Cancel {
        change: "c-1".into(),
    }
    .into();
    assert_eq!(
        c,
        ApiCall::Cancel {
            change: "c-1".into()
        }
    );
    let c: ApiCall = catalog::SshKey.into();
    assert_eq!(
        c,
        ApiCall::Catalog(vigie_wire::catalog::CatalogCall::SshKey)
    );
    assert!(!ApiCall::from(Hosts).mutates());
}

#[test]
fn another_calls_answer_is_handed_back_untouched() {
    assert_eq!(Hosts::answer(ApiAnswer::Hosts(Vec::new())), Ok(Vec::new()));
    assert_eq!(
        Hosts::answer(ApiAnswer::Done),
        Err(Box::new(ApiAnswer::Done))
    );
    let key = ApiAnswer::Catalog(CatalogAnswer::SshKey("ssh-ed25519 AAAA".into()));
    assert_eq!(
        catalog::SshKey::answer(key.clone()),
        Ok("ssh-ed25519 AAAA".into())
    );
    assert_eq!(catalog::Pools::answer(key.clone()), Err(Box::new(key)));
}

#[test]
fn a_page_holds_its_calls_answer() {
    let page = PageInfo::default();
    let call = Paged {
        call: Status {
            change: None,
            limit: 10,
        },
        page: PageAsk::default(),
    };
    assert!(matches!(ApiCall::from(call), ApiCall::Page { .. }));
    let inner = ApiAnswer::Page {
        answer: Box::new(ApiAnswer::Changes(Vec::new())),
        page: page.clone(),
    };
    assert_eq!(
        Paged::<Status>::answer(inner),
        Ok((Vec::new(), page.clone()))
    );
    let wrong = ApiAnswer::Page {
        answer: Box::new(ApiAnswer::Done),
        page,
    };
    assert_eq!(Paged::<Status>::answer(wrong.clone()), Err(Box::new(wrong)));
}
