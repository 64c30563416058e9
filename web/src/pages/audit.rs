//! The audit: pages of records, newest first (`before` a tenant number),
//! and the chain's verification.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use vigie_json::AuditJson;
use vigie_wire::tower::{ApiAnswer, ApiCall, AuditFilter};

use super::{layout, refused, respond, signed, unexpected};
use crate::app::Shared;

/// Records on one audit page.
pub const PAGE: u32 = 50;

pub fn table(records: &[AuditJson]) -> Markup {
    html! {
        table.audit {
            thead { tr { th { "#" } th { "At" } th { "Operator" } th { "Host" } th { "Change" } th { "Action" } th { "Summary" } } }
            tbody {
                @for r in records {
                    tr {
                        td { (r.tenant_seq) }
                        td { (r.at) }
                        td { (r.operator) }
                        td { (r.host) }
                        td { @if !r.change.is_empty() { a href={ "/changes/" (r.change) } { (r.change) } } }
                        td { (r.action) }
                        td { (r.summary) }
                    }
                }
            }
        }
    }
}

/// A page's place (`before`) and the filters the page's form sends (an
/// empty field filters nothing).
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    pub before: Option<u64>,
    pub host: Option<String>,
    pub change: Option<String>,
    pub operator: Option<String>,
}

impl AuditQuery {
    fn field(v: &Option<String>) -> Option<String> {
        v.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    /// The call of one page of `limit` records, newest first, filtered.
    pub fn call(&self, limit: u32) -> ApiCall {
        ApiCall::Audit {
            host: Self::field(&self.host),
            change: Self::field(&self.change),
            limit,
            filter: Box::new(AuditFilter {
                before: self.before,
                operator: Self::field(&self.operator),
                ..AuditFilter::default()
            }),
        }
    }

    /// The query of the page of records older than `before`, the same
    /// filters kept.
    pub fn older(&self, before: u64) -> String {
        let mut pairs = vec![("before", before.to_string())];
        for (name, v) in [
            ("host", &self.host),
            ("change", &self.change),
            ("operator", &self.operator),
        ] {
            pairs.extend(Self::field(v).map(|v| (name, v)));
        }
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// The filters' form (GET: a filtered page is a link like any other).
fn filters(q: &AuditQuery) -> Markup {
    let value = |v: &Option<String>| AuditQuery::field(v).unwrap_or_default();
    html! {
        form #audit-filters method="get" action="/audit" {
            label { "Host " input name="host" value=(value(&q.host)); }
            " "
            label { "Change " input name="change" value=(value(&q.change)); }
            " "
            label { "Operator " input name="operator" value=(value(&q.operator)); }
            " "
            button type="submit" { "Filter" }
        }
    }
}

/// The call of one page of the audit, newest first, unfiltered.
pub fn call(limit: u32, before: Option<u64>) -> ApiCall {
    AuditQuery {
        before,
        ..AuditQuery::default()
    }
    .call(limit)
}

pub async fn page(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<AuditQuery>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let mut records: Vec<AuditJson> = match app
        .referee
        .as_operator(&who.operator, q.call(PAGE), None)
        .await
    {
        Ok(ApiAnswer::Audit(v)) => v.iter().map(AuditJson::from).collect(),
        Ok(_) => return unexpected(&who),
        Err(f) => return refused(&who, &f),
    };
    records.sort_by_key(|r| std::cmp::Reverse(r.tenant_seq));
    let older = records.last().map(|r| r.tenant_seq).filter(|n| *n > 1);
    let body = html! {
        p { a href="/audit/verify" { "Verify the chain" } }
        (filters(&q))
        (table(&records))
        @if let Some(n) = older { p { a href={ "/audit?" (q.older(n)) } { "Older" } } }
    };
    respond(StatusCode::OK, layout::page("Audit", Some(&who), body))
}

pub async fn verify(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match app
        .referee
        .as_operator(&who.operator, ApiCall::AuditVerify, None)
        .await
    {
        Ok(ApiAnswer::AuditVerified { records, head }) => respond(
            StatusCode::OK,
            layout::page(
                "Audit verified",
                Some(&who),
                html! { p #verified { (records) " records, chain intact, head " code { (head) } } },
            ),
        ),
        Ok(_) => unexpected(&who),
        Err(f) => refused(&who, &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forms_filters_reach_the_call_and_the_older_page_keeps_them() {
        let q = AuditQuery {
            before: Some(90),
            host: Some(" web-1 ".into()),
            change: Some(String::new()),
            operator: Some("a&b".into()),
        };
        let ApiCall::Audit {
            host,
            change,
            limit,
            filter,
        } = q.call(PAGE)
        else {
            panic!("not an audit call");
        };
        assert_eq!(host.as_deref(), Some("web-1"));
        assert_eq!(change, None, "an empty field filters nothing");
        assert_eq!(limit, PAGE);
        assert_eq!(filter.operator.as_deref(), Some("a&b"));
        assert_eq!(filter.before, Some(90));
        assert_eq!(q.older(40), "before=40&host=web-1&operator=a%26b");
    }
}
