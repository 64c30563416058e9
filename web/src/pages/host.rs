//! One host: its state and labels, its latest metrics as small charts,
//! its queue, its latest audit records, and the tail of its steps' logs.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use vigie_json::{AuditJson, ChangeJson, HostJson};
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind};

use super::{layout, refused, respond, signed, unexpected};
use crate::app::Shared;

pub async fn page(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let op = &who.operator;
    let host = match app.referee.as_operator(op, ApiCall::Hosts, None).await {
        Ok(ApiAnswer::Hosts(h)) => h.iter().find(|h| h.id == id).map(HostJson::from),
        Ok(_) => return unexpected(&who),
        Err(f) => return refused(&who, &f),
    };
    let Some(host) = host else {
        return refused(
            &who,
            &ApiFault::new(ApiFaultKind::NotFound, format!("no host {id}")),
        );
    };
    let queue: Vec<ChangeJson> = match app
        .referee
        .as_operator(op, ApiCall::Queue { host: id.clone() }, None)
        .await
    {
        Ok(ApiAnswer::Changes(v)) => v.iter().map(ChangeJson::from).collect(),
        Ok(_) => return unexpected(&who),
        Err(f) => return refused(&who, &f),
    };
    let audit_call = ApiCall::Audit {
        host: Some(id.clone()),
        change: None,
        limit: 20,
        filter: Box::default(),
    };
    // The host's history needs `audit.read`: without it the page says so.
    let history = match app.referee.as_operator(op, audit_call, None).await {
        Ok(ApiAnswer::Audit(v)) => Ok(v.iter().map(AuditJson::from).collect::<Vec<_>>()),
        Ok(_) => return unexpected(&who),
        Err(f) => Err(f.message),
    };
    let metrics = super::host_obs::metrics(&app, op, &id).await;
    let logs = super::host_obs::logs(&app, op, &id, host.online).await;
    let body = html! {
        p {
            @if host.online { span.online { "online" } } @else { span.offline { "offline" } }
            " · " (layout::labels(&host.labels))
        }
        @if let Some(why) = &host.plug_down { p.error { (why) } }
        h2 { "Metrics" }
        (metrics)
        h2 { "Queue" }
        (super::change::list(&queue))
        h2 { "History" }
        @match &history {
            Ok(h) => (super::audit::table(h)),
            Err(m) => p.error { (m) },
        }
        h2 { "Logs" }
        (logs)
    };
    respond(
        StatusCode::OK,
        layout::page(&format!("Host {}", host.id), Some(&who), body),
    )
}
