//! Operators and tokens: the tenant's operators and their grants (for
//! those who may list them), and the signed-in operator's own sessions
//! and API tokens — a token made here is shown once, any of them revoked
//! (each a POST with the session's CSRF token).

use axum::extract::{Form, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use vigie_client::calls::Operators;
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind};
use vigie_wire::web::{CredentialView, WebAnswer, WebCall};

use super::{layout, refused, respond, signed, when};
use crate::app::Shared;
use crate::auth::Signed;

/// The longest token life offered, in days.
pub const MAX_TOKEN_DAYS: u64 = 365;

pub async fn operators(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let ops = match app.referee.ask(&who.operator, Operators).await {
        Ok(v) => v,
        Err(f) => return refused(&who, &f),
    };
    let body = html! {
        table #operators {
            thead { tr { th { "Operator" } th { "Tenant" } th { "State" } th { "Grants" } } }
            tbody {
                @for o in &ops {
                    tr {
                        td { (o.name) }
                        td { (o.tenant) }
                        td { @if o.revoked { "revoked" } @else { "active" } }
                        td { @for g in &o.grants { span.label { (g.to_string()) } } }
                    }
                }
            }
        }
        p { "Operators are added, granted and revoked with " code { "vigie operators" } "." }
    };
    respond(StatusCode::OK, layout::page("Operators", Some(&who), body))
}

async fn credentials(app: &Shared, who: &Signed) -> Result<Vec<CredentialView>, ApiFault> {
    match app
        .referee
        .as_operator(&who.operator, ApiCall::Web(WebCall::Credentials), None)
        .await?
    {
        ApiAnswer::Web(WebAnswer::Credentials(v)) => Ok(v),
        _ => Err(ApiFault::new(
            ApiFaultKind::Unavailable,
            "unexpected answer",
        )),
    }
}

fn tokens_body(who: &Signed, creds: &[CredentialView], secret: Option<&str>) -> Markup {
    html! {
        @if let Some(s) = secret {
            div.notice {
                p { "Your new API token, shown this once: copy it now." }
                pre #new-token { (s) }
            }
        }
        h2 { "New API token" }
        form #token-create method="post" action="/tokens" {
            input type="hidden" name="csrf" value=(who.csrf);
            label { "Label " input type="text" name="label" maxlength="64" placeholder="ci"; }
            " "
            label { "Expires in (days) " input type="number" name="days" min="1" max=(MAX_TOKEN_DAYS) value="30"; }
            " "
            button type="submit" { "Create" }
        }
        h2 { "Sessions and tokens" }
        table #credentials {
            thead { tr { th { "Id" } th { "Kind" } th { "Label" } th { "Created" } th { "Expires" } th {} } }
            tbody {
                @for c in creds {
                    tr {
                        td { code { (c.id) } @if c.id == who.credential.id { " (this session)" } }
                        td { (c.kind.word()) }
                        td { (c.label) }
                        td { (when(c.created_ms)) }
                        td { (when(c.expires_ms)) }
                        td { (layout::action(&format!("/tokens/{}/revoke", c.id), &who.csrf, "Revoke")) }
                    }
                }
            }
        }
    }
}

pub async fn tokens(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match credentials(&app, &who).await {
        Ok(v) => respond(
            StatusCode::OK,
            layout::page(
                "Sessions and tokens",
                Some(&who),
                tokens_body(&who, &v, None),
            ),
        ),
        Err(f) => refused(&who, &f),
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub label: String,
    #[serde(default)]
    pub days: String,
}

pub async fn create(
    State(app): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<CreateForm>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if !app.csrf.check(&who.credential.id, &f.csrf) {
        return super::csrf_refused(&who);
    }
    let days = match f.days.trim().parse::<u64>() {
        Ok(d) if (1..=MAX_TOKEN_DAYS).contains(&d) => d,
        _ => {
            let why = format!("a token expires in 1 to {MAX_TOKEN_DAYS} days");
            return refused(&who, &ApiFault::new(ApiFaultKind::Invalid, why));
        }
    };
    let call = ApiCall::Web(WebCall::TokenCreate {
        valid_ms: days * 86_400_000,
        label: f.label.trim().to_owned(),
    });
    let secret = match app.referee.as_operator(&who.operator, call, None).await {
        Ok(ApiAnswer::Web(WebAnswer::Issued { secret, .. })) => secret,
        Ok(_) => return super::unexpected(&who),
        Err(f) => return refused(&who, &f),
    };
    match credentials(&app, &who).await {
        Ok(v) => respond(
            StatusCode::OK,
            layout::page(
                "Sessions and tokens",
                Some(&who),
                tokens_body(&who, &v, Some(&secret)),
            ),
        ),
        Err(f) => refused(&who, &f),
    }
}

pub async fn revoke(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<super::change::CsrfForm>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    if !app.csrf.check(&who.credential.id, &f.csrf) {
        return super::csrf_refused(&who);
    }
    let call = ApiCall::Web(WebCall::Revoke { id });
    match app.referee.as_operator(&who.operator, call, None).await {
        Ok(_) => Redirect::to("/tokens").into_response(),
        Err(f) => refused(&who, &f),
    }
}
