//! Host selectors as operators type them on the command line.

use std::collections::BTreeMap;

use crate::{ChangeError, Selector};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn none() -> BTreeMap<String, String> {
    BTreeMap::new()
}

fn parse(text: &str) -> Selector {
    Selector::parse(text).unwrap_or_else(|err| panic!("{err}"))
}

fn refused(text: &str, why: &str) {
    match Selector::parse(text) {
        Ok(selector) => panic!("accepted {text:?} as {selector:?}"),
        Err(err) => {
            assert!(matches!(err, ChangeError::Selector { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(&format!("{text:?}")), "{message}");
            assert!(message.contains(why), "no {why:?} in: {message}");
        }
    }
}

#[test]
fn one_id_matches_exactly_that_host() {
    let selector = parse("web-1");
    assert_eq!(selector, Selector::Host("web-1".into()));
    assert!(selector.matches("web-1", &none()));
    for other in ["web-10", "web-", "Web-1", "xweb-1", "web-1 "] {
        assert!(!selector.matches(other, &none()), "{other}");
    }
    assert_eq!(selector.exact_ids(), Some(&["web-1".to_string()][..]));
}

#[test]
fn a_list_matches_each_listed_host_exactly() {
    let selector = parse("web-1, web-2,db-1");
    assert_eq!(
        selector.exact_ids(),
        Some(&["web-1".to_string(), "web-2".into(), "db-1".into()][..])
    );
    for id in ["web-1", "web-2", "db-1"] {
        assert!(selector.matches(id, &none()), "{id}");
    }
    for id in ["web-10", "web-3", "db"] {
        assert!(!selector.matches(id, &none()), "{id}");
    }
    assert_eq!(selector.to_string(), "web-1,web-2,db-1");
}

#[test]
fn globs_match_host_ids() {
    let star = parse("web-*");
    assert_eq!(star.exact_ids(), None);
    assert!(star.matches("web-1", &none()));
    assert!(star.matches("web-10", &none()));
    assert!(!star.matches("db-1", &none()));

    let class = parse("web-[0-9]");
    assert!(class.matches("web-7", &none()));
    assert!(!class.matches("web-10", &none()));

    let one = parse("web-?");
    assert!(one.matches("web-a", &none()));
    assert!(!one.matches("web-ab", &none()));

    let either = parse("{web,db}-*");
    assert!(either.matches("db-2", &none()));
    assert!(!either.matches("cache-2", &none()));

    // Ids are case-sensitive; so are globs.
    assert!(!star.matches("WEB-1", &none()));
}

#[test]
fn labels_must_all_match() {
    let selector = parse("role=web,env=prod");
    assert_eq!(selector.exact_ids(), None);
    let host = labels(&[("role", "web"), ("env", "prod"), ("dc", "par1")]);
    assert!(selector.matches("any", &host));
    assert!(!selector.matches("any", &labels(&[("role", "web")])));
    assert!(!selector.matches("any", &labels(&[("role", "web"), ("env", "staging")])));
    assert!(!selector.matches("any", &none()));
    assert!(parse("role=web").matches("x", &labels(&[("role", "web")])));
    assert!(!parse("role=web").matches("x", &labels(&[("role", "webserver")])));
}

#[test]
fn display_gives_a_normal_form_that_parses_back() {
    for (text, normal) in [
        ("web-1", "web-1"),
        (" web-1 , web-2 ", "web-1,web-2"),
        ("web-*", "web-*"),
        ("env=prod, role=web", "env=prod,role=web"),
        ("role=web,env=prod", "env=prod,role=web"),
    ] {
        let selector = parse(text);
        assert_eq!(selector.to_string(), normal);
        assert_eq!(parse(normal), selector);
        assert_eq!(normal.parse::<Selector>().unwrap(), selector);
    }
}

#[test]
fn selectors_travel_as_their_string_form() {
    use serde_norway::Value;
    for text in ["web-1", "web-1,db-1", "web-[0-9]", "env=prod,role=web"] {
        let selector = parse(text);
        let value = serde_norway::to_value(&selector).unwrap();
        assert_eq!(value, Value::String(text.into()));
        assert_eq!(
            serde_norway::from_value::<Selector>(value).unwrap(),
            selector
        );
    }
    let mixed = serde_norway::from_value::<Selector>(Value::String("web-1,role=web".into()));
    assert!(mixed.unwrap_err().to_string().contains("mixes"));
}

#[test]
fn empty_mixed_and_malformed_selectors_are_refused() {
    refused("", "empty");
    refused("   ", "empty");
    refused("web-1,", "empty item");
    refused("web-1,,web-2", "empty item");
    refused("web-1,role=web", "mixes host ids and labels");
    refused("web-*,web-1", "mixes a glob");
    refused("web-*,db-*", "braces");
    refused("role=web*", "globs apply to host ids");
    refused("web-[", "not a valid glob");
    refused("web 1", "' '");
    refused("web-1,.hidden", "\".hidden\"");
    refused("web-1,web-1", "listed twice");
    refused("role=web,role=db", "given twice");
    refused("role=", "not `key=value`");
    refused("=web", "not `key=value`");
    refused("role=a=b", "'='");
    refused("role=we b", "' '");
}
