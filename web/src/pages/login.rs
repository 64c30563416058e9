//! Signing in with a one-time URL, and out. Opening the URL shows a
//! button (a link previewer fetching it spends nothing); posting it has
//! the referee exchange the ticket for a session, set as an HttpOnly,
//! SameSite=Strict cookie that expires with the session.

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use vigie_wire::tower::{ApiAnswer, ApiCall};
use vigie_wire::web::{WebAnswer, WebCall};

use super::{layout, respond, signed};
use crate::app::Shared;
use crate::auth;

pub async fn ticket(Path(ticket): Path<String>) -> Response {
    let body = html! {
        form method="post" action="/login" {
            input type="hidden" name="ticket" value=(ticket);
            button #signin type="submit" { "Sign in" }
        }
    };
    respond(StatusCode::OK, layout::page("Sign in", None, body))
}

#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    pub ticket: String,
}

/// Whether a form post comes from the console's own pages, as the
/// browser says: `Sec-Fetch-Site` when it sends one (`Origin` is `null`
/// under our `no-referrer` policy), else `Origin`. A post from another
/// site could sign the visitor in as someone else. Clients that are no
/// browser send neither.
fn same_origin(headers: &HeaderMap) -> bool {
    let text = |h| {
        headers
            .get(h)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return site == "same-origin" || site == "none";
    }
    let Some(origin) = text(header::ORIGIN) else {
        return true;
    };
    let host = text(header::HOST);
    host.is_some_and(|h| {
        origin.strip_prefix("http://") == Some(h) || origin.strip_prefix("https://") == Some(h)
    })
}

pub async fn redeem(
    State(app): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    if !same_origin(&headers) {
        tracing::warn!(event = "login_cross_origin");
        return respond(
            StatusCode::FORBIDDEN,
            layout::page(
                "Sign in",
                None,
                html! { p.error { "Sign in from the console's own page." } },
            ),
        );
    }
    let call = ApiCall::Web(WebCall::Redeem {
        ticket: f.ticket,
        valid_ms: app.session_ms,
    });
    match app.referee.as_tower(call).await {
        Ok(ApiAnswer::Web(WebAnswer::Issued { secret, view, .. })) => {
            tracing::info!(event = "web_login", session = %view.id);
            let cookie = auth::session_cookie(&secret, app.session_ms / 1000, app.secure);
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        _ => respond(
            StatusCode::FORBIDDEN,
            layout::page(
                "Sign in",
                None,
                html! { p.error { "This sign-in URL is unknown, used or expired: run "
                code { "vigie web login" } " again." } },
            ),
        ),
    }
}

pub async fn logout(
    State(app): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<super::change::CsrfForm>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if !app.csrf.check(&who.credential.id, &f.csrf) {
        return super::csrf_refused(&who);
    }
    let call = ApiCall::Web(WebCall::Revoke {
        id: who.credential.id.clone(),
    });
    let _ = app.referee.as_operator(&who.operator, call, None).await;
    (
        [(header::SET_COOKIE, auth::cleared_cookie())],
        Redirect::to("/"),
    )
        .into_response()
}
