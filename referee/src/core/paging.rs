//! One page of a list answer (no I/O): the list sorted by its key, cut at
//! the cursor, and what is left out counted, so that no list is ever cut
//! silently. Keys are names, numbers or addresses; a cursor is the key
//! of the last item shown, as text, so items added or removed between two
//! pages move no other item to another page.

use std::net::IpAddr;

use vigie_wire::page::{PageAsk, PageInfo, MAX_PAGE};
use vigie_wire::tower::{ApiAnswer, ApiFault, ApiFaultKind};

/// A number, an address (as a number) or a text: compared in that order.
type Key = (u128, String);

/// An item of a list, by its key.
trait Keyed {
    fn key(&self) -> Key;
    fn cursor(&self) -> String;
    /// The key a cursor names.
    fn parse(cursor: &str) -> Result<Key, String> {
        Ok((0, cursor.to_owned()))
    }
}

fn number(cursor: &str) -> Result<Key, String> {
    cursor
        .parse::<u64>()
        .map(|n| (u128::from(n), String::new()))
        .map_err(|_| format!("{cursor:?} is not a cursor of this list (a number)"))
}

macro_rules! by_text {
    ($t:ty, |$s:ident| $e:expr) => {
        impl Keyed for $t {
            fn key(&self) -> Key {
                (0, self.cursor())
            }
            fn cursor(&self) -> String {
                let $s = self;
                $e
            }
        }
    };
}

macro_rules! by_number {
    ($t:ty, |$s:ident| $e:expr) => {
        impl Keyed for $t {
            fn key(&self) -> Key {
                let $s = self;
                (u128::from($e), String::new())
            }
            fn cursor(&self) -> String {
                let $s = self;
                $e.to_string()
            }
            fn parse(cursor: &str) -> Result<Key, String> {
                number(cursor)
            }
        }
    };
}

use vigie_wire::catalog::{Allocation, AppRecord, PoolView, ServerRecord, SessionRecord};
use vigie_wire::front::{KeyRecord, OperatorRecord};
use vigie_wire::observe::HostMetricsView;
use vigie_wire::tower::{AuditRecord, ChangeView, HostView};

by_number!(ChangeView, |c| c.seq);
by_number!(AuditRecord, |r| r.tenant_seq);
by_number!(SessionRecord, |s| s.id);
by_text!(HostView, |h| h.id.clone());
by_text!(KeyRecord, |k| format!("{} {}", k.public, k.host));
by_text!(OperatorRecord, |o| o.name.clone());
by_text!(ServerRecord, |s| s.spec.name.clone());
by_text!(PoolView, |p| p.spec.name.clone());
by_text!(AppRecord, |a| format!("{}@{}", a.spec.name, a.spec.version));
by_text!(HostMetricsView, |h| h.host.clone());
by_text!(vigie_wire::deploy::Deployment, |d| format!(
    "{}/{}",
    d.app, d.environment
));

impl Keyed for Allocation {
    fn key(&self) -> Key {
        (address_number(&self.address), String::new())
    }
    fn cursor(&self) -> String {
        self.address.to_string()
    }
    fn parse(cursor: &str) -> Result<Key, String> {
        let a: IpAddr = cursor
            .parse()
            .map_err(|_| format!("{cursor:?} is not a cursor of this list (an address)"))?;
        Ok((address_number(&a), String::new()))
    }
}

/// IPv4 first (as mapped addresses), then IPv6, in numeric order.
fn address_number(a: &IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(*v6),
    }
}

/// The page `ask` names of a whole list, and what it leaves out.
fn cut<T: Keyed>(mut items: Vec<T>, ask: &PageAsk) -> Result<(Vec<T>, PageInfo), String> {
    items.sort_by_cached_key(Keyed::key);
    let total = items.len();
    let limit = ask.limit.clamp(1, MAX_PAGE) as usize;
    let at = |c: &str, inclusive: bool| -> Result<usize, String> {
        let k = T::parse(c)?;
        Ok(items.partition_point(|i| {
            let ik = i.key();
            ik < k || (inclusive && ik == k)
        }))
    };
    let back = ask.after.is_none() && (ask.before.is_some() || ask.newest);
    let (start, end) = match (&ask.after, &ask.before) {
        (Some(a), _) => {
            let s = at(a, true)?;
            (s, (s + limit).min(total))
        }
        (None, Some(b)) => {
            let e = at(b, false)?;
            (e.saturating_sub(limit), e)
        }
        (None, None) if ask.newest => (total.saturating_sub(limit), total),
        (None, None) => (0, limit.min(total)),
    };
    let more = if back { start } else { total - end };
    let next = match (more, back) {
        (0, _) => None,
        (_, true) => items.get(start).map(Keyed::cursor),
        (_, false) => end
            .checked_sub(1)
            .and_then(|i| items.get(i))
            .map(Keyed::cursor),
    };
    let page: Vec<T> = items.drain(start..end).collect();
    let info = PageInfo {
        total: total as u64,
        more: more as u64,
        next,
        back,
    };
    Ok((page, info))
}

/// One page of a list answer; anything but a list is refused.
pub fn page(answer: ApiAnswer, ask: &PageAsk) -> Result<ApiAnswer, ApiFault> {
    use vigie_wire::catalog::CatalogAnswer as C;
    use vigie_wire::deploy::DeployAnswer as D;
    fn wrap<T: Keyed>(
        v: Vec<T>,
        ask: &PageAsk,
        f: impl FnOnce(Vec<T>) -> ApiAnswer,
    ) -> Result<ApiAnswer, ApiFault> {
        let (v, page) = cut(v, ask).map_err(|m| ApiFault::new(ApiFaultKind::Invalid, m))?;
        Ok(ApiAnswer::Page {
            answer: Box::new(f(v)),
            page,
        })
    }
    match answer {
        ApiAnswer::Changes(v) => wrap(v, ask, ApiAnswer::Changes),
        ApiAnswer::Hosts(v) => wrap(v, ask, ApiAnswer::Hosts),
        ApiAnswer::Audit(v) => wrap(v, ask, ApiAnswer::Audit),
        ApiAnswer::Keys(v) => wrap(v, ask, ApiAnswer::Keys),
        ApiAnswer::Operators(v) => wrap(v, ask, ApiAnswer::Operators),
        ApiAnswer::HostMetrics(v) => wrap(v, ask, ApiAnswer::HostMetrics),
        ApiAnswer::Deploy(D::Deployments(v)) => {
            wrap(v, ask, |v| ApiAnswer::Deploy(D::Deployments(v)))
        }
        ApiAnswer::Catalog(C::Sessions(v)) => wrap(v, ask, |v| ApiAnswer::Catalog(C::Sessions(v))),
        ApiAnswer::Catalog(C::Servers(v)) => wrap(v, ask, |v| ApiAnswer::Catalog(C::Servers(v))),
        ApiAnswer::Catalog(C::Pools(v)) => wrap(v, ask, |v| ApiAnswer::Catalog(C::Pools(v))),
        ApiAnswer::Catalog(C::Allocations(v)) => {
            wrap(v, ask, |v| ApiAnswer::Catalog(C::Allocations(v)))
        }
        ApiAnswer::Catalog(C::Apps(v)) => wrap(v, ask, |v| ApiAnswer::Catalog(C::Apps(v))),
        _ => Err(ApiFault::new(
            ApiFaultKind::Invalid,
            "only a list call is paged",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(limit: u32, after: Option<&str>, before: Option<&str>, newest: bool) -> PageAsk {
        PageAsk {
            limit,
            after: after.map(str::to_owned),
            before: before.map(str::to_owned),
            newest,
        }
    }

    fn session(id: u64) -> SessionRecord {
        SessionRecord {
            id,
            tenant: "t".into(),
            operator: "o".into(),
            at_ms: 0,
            file: "f".into(),
            digest: String::new(),
            rows: 0,
            servers: Vec::new(),
            undone_ms: None,
        }
    }

    fn ids(v: &[SessionRecord]) -> Vec<u64> {
        v.iter().map(|s| s.id).collect()
    }

    /// Forward and back, every item is reached once, and what is left is
    /// counted at every page.
    #[test]
    fn pages_forward_and_back_reach_every_item_once() {
        let all: Vec<SessionRecord> = (1..=10).rev().map(session).collect();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let (p, info) = cut(all.clone(), &ask(3, after.as_deref(), None, false)).unwrap();
            assert_eq!(info.total, 10);
            seen.extend(ids(&p));
            assert_eq!(info.more, 10 - seen.len() as u64);
            match info.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, (1..=10).collect::<Vec<_>>());
        let (p, info) = cut(all.clone(), &ask(3, None, None, true)).unwrap();
        assert_eq!(
            (ids(&p), info.more, info.next.as_deref()),
            (vec![8, 9, 10], 7, Some("8"))
        );
        let (p, info) = cut(all.clone(), &ask(3, None, Some("3"), false)).unwrap();
        assert_eq!((ids(&p), info.more, info.next), (vec![1, 2], 0, None));
        assert!(cut(all, &ask(3, Some("web-1"), None, false)).is_err());
    }

    /// Addresses page in numeric order, not as text.
    #[test]
    fn addresses_are_in_numeric_order() {
        let a = |s: &str| Allocation {
            pool: "p".into(),
            address: s.parse().unwrap(),
            owner: vigie_wire::catalog::Owner::App("x".into()),
            operator: "o".into(),
            at_ms: 0,
        };
        let v = vec![a("10.0.0.10"), a("10.0.0.9"), a("10.0.0.100")];
        let (p, info) = cut(v, &ask(2, Some("10.0.0.9"), None, false)).unwrap();
        let got: Vec<String> = p.iter().map(|x| x.address.to_string()).collect();
        assert_eq!(got, ["10.0.0.10", "10.0.0.100"]);
        assert_eq!(info.next, None);
    }
}
