//! What every answer carries, and how a refusal becomes an HTTP status.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use vigie_wire::tower::{ApiFault, ApiFaultKind};

/// Scripts and styles only from the console itself (no inline script, no
/// CDN), no framing, no form posted elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
    base-uri 'none'";

/// Adds the security headers to every response.
pub async fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    let mut set = |k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    // A login URL holds a secret: never sent on as a referrer.
    set(header::REFERRER_POLICY, "no-referrer");
    r.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    r
}

/// The HTTP status of a refusal (the CLI's exit code has the same cause).
pub fn status_of(f: &ApiFault) -> StatusCode {
    match f.kind {
        ApiFaultKind::Malformed | ApiFaultKind::Invalid => StatusCode::BAD_REQUEST,
        ApiFaultKind::NotFound => StatusCode::NOT_FOUND,
        ApiFaultKind::Conflict | ApiFaultKind::Tampered => StatusCode::CONFLICT,
        ApiFaultKind::Forbidden => StatusCode::FORBIDDEN,
        ApiFaultKind::Storage | ApiFaultKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// One stable word per refusal, as the CLI's `--json` error says it.
pub fn kind_word(k: ApiFaultKind) -> &'static str {
    match k {
        ApiFaultKind::Malformed => "malformed",
        ApiFaultKind::Invalid => "invalid",
        ApiFaultKind::NotFound => "not_found",
        ApiFaultKind::Conflict => "conflict",
        ApiFaultKind::Tampered => "tampered",
        ApiFaultKind::Forbidden => "forbidden",
        ApiFaultKind::Storage => "storage",
        ApiFaultKind::Unavailable => "unavailable",
    }
}
