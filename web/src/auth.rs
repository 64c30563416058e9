//! Who is calling: the console's session cookie, or an API token in
//! `Authorization: Bearer`. Both are secrets the referee issued and
//! checks (`WebCall::Authenticate`); the web daemon keeps none of them.

use axum::http::{header, HeaderMap};
use vigie_wire::front::OperatorRecord;
use vigie_wire::tower::{ApiAnswer, ApiCall, ApiFault, ApiFaultKind};
use vigie_wire::web::{CredentialView, WebAnswer, WebCall};

use crate::referee::Referee;

/// The session cookie's name.
pub const COOKIE: &str = "vigie_session";
/// The longest secret looked at (ours are 81 bytes).
const MAX_SECRET: usize = 200;

/// A signed-in operator, as the referee says now.
#[derive(Debug, Clone)]
pub struct Signed {
    pub operator: OperatorRecord,
    pub credential: CredentialView,
    /// The session's CSRF token, for the forms of its pages.
    pub csrf: String,
}

/// The session secret in the request's cookies.
pub fn cookie_secret(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The API token of `Authorization: Bearer`.
pub fn bearer_secret(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn unauthorized() -> ApiFault {
    ApiFault::new(ApiFaultKind::Forbidden, "not signed in")
}

/// Asks the referee who holds `secret`.
pub async fn authenticate(referee: &Referee, secret: Option<String>) -> Result<Signed, ApiFault> {
    let secret = secret
        .filter(|s| !s.is_empty() && s.len() <= MAX_SECRET)
        .ok_or_else(unauthorized)?;
    match referee
        .as_tower(ApiCall::Web(WebCall::Authenticate { secret }))
        .await?
    {
        ApiAnswer::Web(WebAnswer::Holder { view, operator }) => Ok(Signed {
            operator,
            credential: view,
            csrf: String::new(),
        }),
        _ => Err(unauthorized()),
    }
}

/// The `Set-Cookie` value of a new session (`secure` when served over
/// TLS).
pub fn session_cookie(secret: &str, max_age_s: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}

/// The `Set-Cookie` value that ends the session in the browser.
pub fn cleared_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}
