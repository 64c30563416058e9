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

/// What an operator may do to a change, each behind a confirmation page
/// (GET) whose form posts the call with the session's CSRF token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeVerb {
    Cancel,
    Abandon,
    Retry,
}

impl ChangeVerb {
    pub const ALL: [ChangeVerb; 3] = [ChangeVerb::Cancel, ChangeVerb::Abandon, ChangeVerb::Retry];

    pub fn slug(self) -> &'static str {
        match self {
            ChangeVerb::Cancel => "cancel",
            ChangeVerb::Abandon => "abandon",
            ChangeVerb::Retry => "retry",
        }
    }

    fn of(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.slug() == slug)
    }

    fn label(self) -> &'static str {
        match self {
            ChangeVerb::Cancel => "Cancel",
            ChangeVerb::Abandon => "Abandon",
            ChangeVerb::Retry => "Retry",
        }
    }

    fn says(self) -> &'static str {
        match self {
            ChangeVerb::Cancel => "Cancels the change: a queued one never runs; a running one stops after its step and undoes what it did.",
            ChangeVerb::Abandon => "Declares the host lost for this change: it ends abandoned, nothing is undone, and the host's queue is held until released.",
            ChangeVerb::Retry => "Submits the change's program again, to the same host, as a new change.",
        }
    }

    /// Whether the verb applies to a change in this state (the referee
    /// decides; this only spares a button that would be refused).
    fn offered(self, c: &ChangeJson) -> bool {
        match self {
            ChangeVerb::Cancel => !c.is_final,
            ChangeVerb::Abandon => !c.is_final && c.state != "queued",
            ChangeVerb::Retry => c.is_final,
        }
    }

    fn call(self, id: &str) -> ApiCall {
        let change = id.to_owned();
        match self {
            ChangeVerb::Cancel => ApiCall::Cancel { change },
            ChangeVerb::Abandon => ApiCall::Abandon { change, hold: true },
            ChangeVerb::Retry => ApiCall::Retry { change },
        }
    }
}

/// The live part of a change's page: its state, steps, and the links to
/// what may be done to it.
pub fn steps(c: &ChangeJson) -> Markup {
    html! {
        p #verbs {
            @for v in ChangeVerb::ALL.into_iter().filter(|v| v.offered(c)) {
                a.button href={ "/changes/" (c.id) "/" (v.slug()) } { (v.label()) } " "
            }
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
    let body = html! {
        p { "On " a href={ "/hosts/" (c.host) } { (c.host) } " · by " (c.operator) " · " (c.title) }
        div #live data-events={ "/changes/" (c.id) "/events" } { (steps(&c)) }
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
    let shown = steps(&first).into_string();
    let stream = futures_util::stream::unfold(
        (rx, shown, first.is_final),
        move |(mut rx, mut shown, done)| {
            async move {
                if done {
                    return None;
                }
                // Only what differs from what the page shows: a view read
                // again (each round of following) is not sent twice.
                let (html, last) = loop {
                    let c = ChangeJson::from(&rx.recv().await?);
                    let html = steps(&c).into_string();
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

fn verb_of(who: &crate::auth::Signed, slug: &str) -> Result<ChangeVerb, Response> {
    ChangeVerb::of(slug).ok_or_else(|| {
        refused(
            who,
            &ApiFault::new(ApiFaultKind::NotFound, format!("no change verb {slug}")),
        )
    })
}

/// A verb's confirmation page: what it does, the change, its form.
pub async fn confirm(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((id, slug)): Path<(String, String)>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let verb = match verb_of(&who, &slug) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let c = match one(&app, &who.operator, &id).await {
        Ok(c) => c,
        Err(f) => return refused(&who, &f),
    };
    let body = html! {
        p { (verb.says()) }
        p { "Change " a href={ "/changes/" (c.id) } { (c.id) } " on " (c.host) ": " (c.title) " (" (c.state) ")" }
        p { (layout::action(&format!("/changes/{}/{}", c.id, verb.slug()), &who.csrf, verb.label()))
            " " a href={ "/changes/" (c.id) } { "Back" } }
    };
    respond(
        StatusCode::OK,
        layout::page(
            &format!("{} change {}?", verb.label(), c.id),
            Some(&who),
            body,
        ),
    )
}

pub async fn act(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((id, slug)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if !app.csrf.check(&who.credential.id, &f.csrf) {
        return super::csrf_refused(&who);
    }
    let verb = match verb_of(&who, &slug) {
        Ok(v) => v,
        Err(r) => return r,
    };
    match app
        .referee
        .as_operator(&who.operator, verb.call(&id), None)
        .await
    {
        Ok(ApiAnswer::Changes(v) | ApiAnswer::Submitted(v)) if verb == ChangeVerb::Retry => {
            let to = v.first().map_or(id, |c| c.id.clone());
            Redirect::to(&format!("/changes/{to}")).into_response()
        }
        Ok(_) => Redirect::to(&format!("/changes/{id}")).into_response(),
        Err(f) => refused(&who, &f),
    }
}
