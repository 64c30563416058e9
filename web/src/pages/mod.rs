//! The console's pages: each asks the referee as the signed-in operator
//! and renders what it answered. Nothing here decides who may see what.

pub mod audit;
pub mod change;
pub mod charts;
pub mod deploys;
pub mod fleet;
pub mod host;
pub mod host_obs;
pub mod import;
pub mod layout;
pub mod login;
pub mod operators;
pub mod pools;
pub mod servers;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup};
use vigie_wire::tower::ApiFault;

use crate::app::App;
use crate::auth::{self, Signed};
use crate::headers::status_of;

/// A time (ms since the epoch) as the JSON objects write it.
pub fn when(ms: u64) -> String {
    vigie_json::rfc3339(ms)
}

/// A page's HTML with a status.
pub fn respond(status: StatusCode, m: Markup) -> Response {
    (status, Html(m.into_string())).into_response()
}

/// The operator signed in by the request's cookie, or the page that says
/// how to sign in.
pub async fn signed(app: &App, headers: &HeaderMap) -> Result<Signed, Response> {
    auth::authenticate(&app.referee, auth::cookie_secret(headers))
        .await
        .map(|mut s| {
            s.csrf = app.csrf.token(&s.credential.id);
            s
        })
        .map_err(|_| {
            respond(
                StatusCode::UNAUTHORIZED,
                layout::page(
                    "Sign in",
                    None,
                    html! {
                        p { "Not signed in, or the session ended. Run "
                            code { "vigie web login" }
                            " and open the URL it prints." }
                    },
                ),
            )
        })
}

/// The tower's refusal, as a page with its status.
pub fn refused(who: &Signed, f: &ApiFault) -> Response {
    respond(
        status_of(f),
        layout::page("Refused", Some(who), html! { p.error { (f.message) } }),
    )
}

/// An answer of another kind than the call's (never expected).
pub fn unexpected(who: &Signed) -> Response {
    respond(
        StatusCode::BAD_GATEWAY,
        layout::page(
            "Unexpected answer",
            Some(who),
            html! { p.error { "the tower answered something else" } },
        ),
    )
}

/// A form whose CSRF token is not this session's.
pub fn csrf_refused(who: &Signed) -> Response {
    tracing::warn!(event = "csrf_refused", operator = %who.operator.name);
    respond(
        StatusCode::FORBIDDEN,
        layout::page(
            "Refused",
            Some(who),
            html! { p.error { "This form is stale or was not made by the console: reload the page and try again." } },
        ),
    )
}
