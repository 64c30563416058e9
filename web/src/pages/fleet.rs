//! The fleet: every host the operator may read, online or not, its queue
//! and labels, filtered by a selector (presentation only: the referee
//! already left out what the operator may not see).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use vigie_json::HostJson;
use vigie_wire::tower::{ApiAnswer, ApiCall};

use super::{layout, refused, respond, signed, unexpected};
use crate::app::Shared;

#[derive(Debug, serde::Deserialize)]
pub struct FleetQuery {
    #[serde(default)]
    pub selector: String,
}

pub async fn page(
    State(app): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<FleetQuery>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let hosts = match app
        .referee
        .as_operator(&who.operator, ApiCall::Hosts, None)
        .await
    {
        Ok(ApiAnswer::Hosts(h)) => h,
        Ok(_) => return unexpected(&who),
        Err(f) => return refused(&who, &f),
    };
    let selector = q.selector.trim();
    let filter = if selector.is_empty() {
        Ok(None)
    } else {
        vigie_changes::Selector::parse(selector).map(Some)
    };
    let mut hosts: Vec<HostJson> = hosts
        .iter()
        .filter(|h| match &filter {
            Ok(Some(s)) => s.matches(&h.id, &h.labels),
            _ => true,
        })
        .map(HostJson::from)
        .collect();
    hosts.sort_by(|a, b| a.id.cmp(&b.id));
    let error = filter.err().map(|e| e.to_string());
    let body = body(&hosts, selector, error.as_deref());
    respond(StatusCode::OK, layout::page("Fleet", Some(&who), body))
}

/// The fleet page's body for `hosts` (sorted), pure: what the benchmark
/// renders.
pub fn body(hosts: &[HostJson], selector: &str, error: Option<&str>) -> Markup {
    let online = hosts.iter().filter(|h| h.online).count();
    html! {
        form method="get" action="/" {
            label { "Selector " input type="text" name="selector" value=(selector) placeholder="role=web"; }
            button type="submit" { "Filter" }
        }
        @if let Some(e) = error { p.error { (e) } }
        p { (hosts.len()) " hosts: " (online) " online, " (hosts.len() - online) " offline" }
        table #hosts {
            thead { tr { th { "Host" } th { "State" } th { "Queued" } th { "Running" } th { "Labels" } } }
            tbody {
                @for h in hosts {
                    tr {
                        td { a href={ "/hosts/" (h.id) } { (h.id) } }
                        td {
                            @if h.online { span.online { "online" } } @else { span.offline { "offline" } }
                            @if let Some(r) = &h.refusing { " (refusing: " (r) ")" }
                            @if h.held { " (held)" }
                        }
                        td { (h.queued) }
                        td { @if let Some(c) = &h.running { a href={ "/changes/" (c) } { (c) } } }
                        td { (layout::labels(&h.labels)) }
                    }
                }
            }
        }
    }
}
