//! The fleet: every host the operator may read, online or not, its queue,
//! labels and memory and disk use as small charts, filtered by a selector
//! (presentation only: the referee already left out what the operator may
//! not see).

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{html, Markup};
use vigie_json::HostJson;
use vigie_wire::tower::{ApiAnswer, ApiCall};

use std::collections::BTreeMap;

use super::{charts, layout, refused, respond, signed, unexpected};
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
    let usage = usage(&app, &who.operator).await;
    let body = body(&hosts, selector, error.as_deref(), &usage);
    respond(StatusCode::OK, layout::page("Fleet", Some(&who), body))
}

/// A host's memory and disk, used and total, from its last sample that is
/// not stale.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub memory: (u64, u64),
    pub disk: (u64, u64),
}

/// Every host's usage the operator may read (none when refused: the
/// charts are left out, the fleet stands).
async fn usage(app: &Shared, op: &vigie_wire::front::OperatorRecord) -> BTreeMap<String, Usage> {
    let call = vigie_client::calls::HostMetrics { host: None };
    let Ok(views) = app.referee.ask(op, call).await else {
        return BTreeMap::new();
    };
    views
        .iter()
        .filter(|v| !v.stale)
        .filter_map(|v| {
            let s = v.sample.as_ref()?;
            let used = |total: u64, free: u64| (total.saturating_sub(free), total);
            Some((
                v.host.clone(),
                Usage {
                    memory: used(s.memory_total_bytes, s.memory_available_bytes),
                    disk: used(s.disk_total_bytes, s.disk_available_bytes),
                },
            ))
        })
        .collect()
}

/// The fleet page's body for `hosts` (sorted), pure: what the benchmark
/// renders.
pub fn body(
    hosts: &[HostJson],
    selector: &str,
    error: Option<&str>,
    usage: &BTreeMap<String, Usage>,
) -> Markup {
    let online = hosts.iter().filter(|h| h.online).count();
    html! {
        form method="get" action="/" {
            label { "Selector " input type="text" name="selector" value=(selector) placeholder="role=web"; }
            button type="submit" { "Filter" }
        }
        @if let Some(e) = error { p.error { (e) } }
        p { (hosts.len()) " hosts: " (online) " online, " (hosts.len() - online) " offline" }
        table #hosts {
            thead { tr { th { "Host" } th { "State" } th { "Queued" } th { "Running" } th { "Memory" } th { "Disk" } th { "Labels" } } }
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
                        @match usage.get(&h.id) {
                            Some(u) => { td { (charts::bar(u.memory.0, u.memory.1)) } td { (charts::bar(u.disk.0, u.disk.1)) } }
                            None => { td {} td {} }
                        }
                        td { (layout::labels(&h.labels)) }
                    }
                }
            }
        }
    }
}
