//! The HTTP JSON API, for scripts: the same verbs as the CLI, its
//! `--json` objects (`vigie_json`), its grants (each call made as the
//! token's operator), and its idempotency keys on writes
//! (`Idempotency-Key`). Only `Authorization: Bearer` is read here, never
//! the console's cookie, so no page of another site can act through it.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use vigie_json::catalog::{AllocationJson, PoolJson, ServerJson};
use vigie_json::{AuditJson, ChangeJson, HostJson};
use vigie_wire::catalog::CatalogAnswer;
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind, IdemKey};

use crate::app::Shared;
use crate::auth::{self, Signed};
use crate::headers::{kind_word, status_of};

/// The header a write's idempotency key comes in.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// The most audit records one call returns.
pub const MAX_AUDIT: u32 = 1_000;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/api/openapi.json",
            get(|| async { Json(crate::openapi::document()) }),
        )
        .route("/api/hosts", get(hosts))
        .route("/api/changes", post(submit))
        .route("/api/changes/{id}", get(change))
        .route("/api/audit", get(audit))
        .route("/api/servers", get(servers))
        .route("/api/pools", get(pools))
        .route("/api/pools/{pool}/allocations", get(allocations))
}

/// A refusal as the CLI's `--json` error object.
pub fn error(f: &ApiFault) -> Response {
    let body = json!({"error": {"kind": kind_word(f.kind), "message": f.message}});
    (status_of(f), Json(body)).into_response()
}

fn unauthorized() -> Response {
    let body = json!({"error": {"kind": "unauthorized", "message": "a valid API token is needed: Authorization: Bearer TOKEN (`vigie tokens create`)"}});
    (
        StatusCode::UNAUTHORIZED,
        [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
        Json(body),
    )
        .into_response()
}

fn unexpected() -> Response {
    error(&ApiFault::new(
        ApiFaultKind::Unavailable,
        "unexpected answer from the tower",
    ))
}

async fn signed(app: &Shared, headers: &HeaderMap) -> Result<Signed, Response> {
    auth::authenticate(&app.referee, auth::bearer_secret(headers))
        .await
        .map_err(|_| unauthorized())
}

async fn call(
    app: &Shared,
    headers: &HeaderMap,
    c: ApiCall,
    idem: Option<IdemKey>,
) -> Result<ApiAnswer, Response> {
    let who = signed(app, headers).await?;
    app.referee
        .as_operator(&who.operator, c, idem)
        .await
        .map_err(|f| error(&f))
}

async fn hosts(State(app): State<Shared>, headers: HeaderMap) -> Response {
    match call(&app, &headers, ApiCall::Hosts, None).await {
        Ok(ApiAnswer::Hosts(v)) => {
            Json(v.iter().map(HostJson::from).collect::<Vec<_>>()).into_response()
        }
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

async fn change(State(app): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let c = ApiCall::Status {
        change: Some(id),
        limit: 1,
    };
    match call(&app, &headers, c, None).await {
        Ok(ApiAnswer::Changes(v)) => match v.first() {
            Some(v) => Json(ChangeJson::from(v)).into_response(),
            None => error(&ApiFault::new(ApiFaultKind::NotFound, "no such change")),
        },
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct SubmitBody {
    /// The hosts: a selector, as `vigie submit --target` takes it.
    pub target: String,
    /// The change file's YAML, as `vigie submit FILE` reads it.
    pub change: String,
}

async fn submit(
    State(app): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Ok(body) = serde_json::from_slice::<SubmitBody>(&body) else {
        return error(&ApiFault::new(
            ApiFaultKind::Invalid,
            "the body is a JSON object with `target` (a selector) and `change` (the change file's YAML)",
        ));
    };
    let idem = match headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| v.to_str().map(str::to_owned))
    {
        None => None,
        Some(Ok(k)) => match IdemKey::try_from(k) {
            Ok(k) => Some(k),
            Err(m) => return error(&ApiFault::new(ApiFaultKind::Invalid, m)),
        },
        Some(Err(_)) => {
            return error(&ApiFault::new(
                ApiFaultKind::Invalid,
                "the idempotency key is not text",
            ))
        }
    };
    if body.change.len() > vigie_changes::MAX_CHANGE_FILE {
        return error(&ApiFault::new(
            ApiFaultKind::Invalid,
            "the change file is too large",
        ));
    }
    let spec = match vigie_changes::parse_change("change", &body.change) {
        Ok(s) => s,
        Err(e) => return error(&ApiFault::new(ApiFaultKind::Invalid, e.to_string())),
    };
    let c = ApiCall::Submit {
        spec,
        target: body.target,
    };
    match call(&app, &headers, c, idem).await {
        Ok(ApiAnswer::Submitted(v) | ApiAnswer::Changes(v)) => {
            Json(v.iter().map(ChangeJson::from).collect::<Vec<_>>()).into_response()
        }
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct AuditQuery {
    pub limit: Option<u32>,
    pub before: Option<u64>,
}

async fn audit(
    State(app): State<Shared>,
    headers: HeaderMap,
    q: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Ok(Query(q)) = q else {
        return error(&ApiFault::new(
            ApiFaultKind::Invalid,
            "limit and before are numbers",
        ));
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_AUDIT).contains(&limit) {
        return error(&ApiFault::new(
            ApiFaultKind::Invalid,
            format!("limit is from 1 to {MAX_AUDIT}"),
        ));
    }
    match call(
        &app,
        &headers,
        crate::pages::audit::call(limit, q.before),
        None,
    )
    .await
    {
        Ok(ApiAnswer::Audit(v)) => {
            Json(v.iter().map(AuditJson::from).collect::<Vec<_>>()).into_response()
        }
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

async fn servers(State(app): State<Shared>, headers: HeaderMap) -> Response {
    match call(&app, &headers, crate::pages::servers::call(), None).await {
        Ok(ApiAnswer::Catalog(CatalogAnswer::Servers(v))) => {
            Json(v.iter().map(ServerJson::from).collect::<Vec<_>>()).into_response()
        }
        Ok(_) => unexpected(),
        Err(r) => r,
    }
}

async fn pools(State(app): State<Shared>, headers: HeaderMap) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    match app
        .referee
        .ask(&who.operator, vigie_client::calls::catalog::Pools)
        .await
    {
        Ok(v) => Json(v.iter().map(PoolJson::from).collect::<Vec<_>>()).into_response(),
        Err(f) => error(&f),
    }
}

async fn allocations(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(pool): Path<String>,
) -> Response {
    let who = match signed(&app, &headers).await {
        Ok(w) => w,
        Err(r) => return r,
    };
    let call = vigie_client::calls::catalog::Allocations { pool };
    match app.referee.ask(&who.operator, call).await {
        Ok(v) => Json(v.iter().map(AllocationJson::from).collect::<Vec<_>>()).into_response(),
        Err(f) => error(&f),
    }
}
