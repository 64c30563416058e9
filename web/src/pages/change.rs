//! Changes: the latest ones, one change's steps — live over server-sent
//! events while it runs — and cancelling one (a form with the CSRF token).

use std::convert::Infallible;

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use vigie_json::ChangeJson;
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind};

use super::{layout, refused, respond, signed, unexpected};
use crate::app::Shared;

/// A list of changes.
pub fn list(changes: &[ChangeJson]) -> Markup {
    html! {
        table.changes {
            thead { tr { th { "Change" } th { "Host" } th { "Title" } th { "State" } th { "Operator" } th { "Submitted" } } }
            tbody {
                @for c in changes {
                    tr {
                        td { a href={ "/changes/" (c.id) } { (c.id) } }
                        td { a href={ "/hosts/" (c.host) } { (c.host) } }
                        td { (c.title) }
                        td { span class={ "state-" (c.state) } { (c.state) } }
                        td { (c.operator) }
                        td { (c.submitted) }
                    }
                }
            }
        }
    }
}

/// The live part of a change's page: its state, steps, and while it is
/// not final the form that cancels it (with the session's CSRF token).
pub fn steps(c: &ChangeJson, csrf: &str) -> Markup {
    html! {
        @if !c.is_final {
            p { (layout::action(&format!("/changes/{}/cancel", c.id), csrf, "Cancel")) }
        }
        p { "State: " strong #state class={ "state-" (c.state) } { (c.state) }
            @if let Some(s) = c.step { " (step " (s) ")" } }
        table #steps {
            thead { tr { th { "#" } th { "Step" } th { "Kind" } th { "Status" } th { "Output" } } }
            tbody {
                @for s in &c.steps {
                    tr {
                        td { (s.step) }
                        td { (s.name) }
                        td { (s.kind) }
                        td { (s.status) }
                        td {
                            @for r in s.result.iter().chain(s.undo.iter()) {
                                @if !r.summary.is_empty() { div { (r.summary) } }
                                @if !r.stdout_tail.is_empty() { pre { (r.stdout_tail) } }
                                @if !r.stderr_tail.is_empty() { pre { (r.stderr_tail) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn latest(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let call = ApiCall::Status {
        change: None,
        limit: 100,
    };
    match app.referee.as_operator(&who.operator, call, None).await {
        Ok(ApiAnswer::Changes(v)) => {
            let v: Vec<ChangeJson> = v.iter().map(ChangeJson::from).collect();
            respond(
                StatusCode::OK,
                layout::page("Changes", Some(&who), list(&v)),
            )
        }
        Ok(_) => unexpected(&who),
        Err(f) => refused(&who, &f),
    }
}

async fn one(
    app: &Shared,
    op: &vigie_wire::front::OperatorRecord,
    id: &str,
) -> Result<ChangeJson, ApiFault> {
    let call = ApiCall::Status {
        change: Some(id.to_owned()),
        limit: 1,
    };
    match app.referee.as_operator(op, call, None).await? {
        ApiAnswer::Changes(v) => v
            .first()
            .map(ChangeJson::from)
            .ok_or_else(|| ApiFault::new(ApiFaultKind::NotFound, format!("no change {id}"))),
        _ => Err(ApiFault::new(
            ApiFaultKind::Unavailable,
            "unexpected answer",
        )),
    }
}

pub async fn page(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let c = match one(&app, &who.operator, &id).await {
        Ok(c) => c,
        Err(f) => return refused(&who, &f),
    };
    let csrf = who.csrf.clone();
    let body = html! {
        p { "On " a href={ "/hosts/" (c.host) } { (c.host) } " · by " (c.operator) " · " (c.title) }
        div #live data-events={ "/changes/" (c.id) "/events" } { (steps(&c, &csrf)) }
    };
    respond(
        StatusCode::OK,
        layout::page(&format!("Change {}", c.id), Some(&who), body),
    )
}

/// The change's views as they come, each as the `steps` HTML (a JSON
/// string), then `end` once it is final.
pub async fn events(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    // The same read as the page: refused here, nothing is followed.
    let first = match one(&app, &who.operator, &id).await {
        Ok(c) => c,
        Err(f) => return refused(&who, &f),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    if let Err(f) = app.referee.follow(&who.operator, id, tx) {
        return refused(&who, &f);
    }
    let csrf = who.csrf.clone();
    let shown = steps(&first, &csrf).into_string();
    let stream = futures_util::stream::unfold(
        (rx, shown, first.is_final),
        move |(mut rx, mut shown, done)| {
            let csrf = csrf.clone();
            async move {
                if done {
                    return None;
                }
                // Only what differs from what the page shows: a view read
                // again (each round of following) is not sent twice.
                let (html, last) = loop {
                    let c = ChangeJson::from(&rx.recv().await?);
                    let html = steps(&c, &csrf).into_string();
                    if html != shown {
                        break (html, c.is_final);
                    }
                };
                shown.clone_from(&html);
                let data = serde_json::to_string(&html).unwrap_or_default();
                let mut events = vec![Ok::<Event, Infallible>(
                    Event::default().event("view").data(data),
                )];
                if last {
                    events.push(Ok(Event::default().event("end").data("{}")));
                }
                Some((futures_util::stream::iter(events), (rx, shown, last)))
            }
        },
    );
    use futures_util::StreamExt;
    Sse::new(stream.flatten())
        .keep_alive(KeepAlive::default())
        .into_response()
}

#[derive(Debug, serde::Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

pub async fn cancel(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if !app.csrf.check(&who.credential.id, &f.csrf) {
        return super::csrf_refused(&who);
    }
    match app
        .referee
        .as_operator(&who.operator, ApiCall::Cancel { change: id.clone() }, None)
        .await
    {
        Ok(_) => Redirect::to(&format!("/changes/{id}")).into_response(),
        Err(f) => refused(&who, &f),
    }
}
