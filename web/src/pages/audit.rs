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

#[derive(Debug, serde::Deserialize)]
pub struct AuditQuery {
    pub before: Option<u64>,
}

/// The call of one page of the audit, newest first.
pub fn call(limit: u32, before: Option<u64>) -> ApiCall {
    ApiCall::Audit {
        host: None,
        change: None,
        limit,
        filter: Box::new(AuditFilter {
            before,
            ..AuditFilter::default()
        }),
    }
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
        .as_operator(&who.operator, call(PAGE, q.before), None)
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
        (table(&records))
        @if let Some(n) = older { p { a href={ "/audit?before=" (n) } { "Older" } } }
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
