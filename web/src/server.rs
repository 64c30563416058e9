//! The web daemon: one HTTP listener (loopback by default), the routes
//! of the console and of the API, embedded assets, and the announcement
//! of its URL to the referee (for `vigie web login`'s URLs).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use vigie_wire::tower::ApiCall;
use vigie_wire::web::WebCall;

use crate::app::{App, Shared};
use crate::csrf::Csrf;
use crate::error::WebError;
use crate::referee::Referee;
use crate::{api, pages};

/// How long a console session lasts.
pub const SESSION_MS: u64 = 12 * 3_600_000;

#[cfg(test)]
mod tests {
    #[test]
    fn the_console_listens_on_loopback_only() {
        assert!(super::parse_bind("http://127.0.0.1:0").is_ok());
        assert!(super::parse_bind("http://[::1]:7180").is_ok());
        assert!(super::parse_bind("http://0.0.0.0:7180").is_err());
        assert!(super::parse_bind("http://10.0.0.1:7180").is_err());
        assert!(super::parse_bind("https://127.0.0.1:7180").is_err());
    }
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `http://IP:PORT` (port 0: any free port).
    pub bind: String,
    pub api: String,
    pub orders: String,
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        body,
    )
        .into_response()
}

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(pages::fleet::page))
        .route("/hosts/{id}", get(pages::host::page))
        .route("/changes", get(pages::change::latest))
        .route("/changes/{id}", get(pages::change::page))
        .route("/changes/{id}/events", get(pages::change::events))
        .route(
            "/changes/{id}/{verb}",
            get(pages::change::confirm).post(pages::change::act),
        )
        .route("/deployments", get(pages::deploys::list))
        .route("/deployments/{app}/{env}", get(pages::deploys::one))
        .route("/deployments/{app}/{env}/events", get(pages::deploys::events))
        .route(
            "/deployments/{app}/{env}/{verb}",
            get(pages::deploys::confirm).post(pages::deploys::act),
        )
        .route("/pools", get(pages::pools::list))
        .route("/pools/{name}", get(pages::pools::one))
        .route("/operators", get(pages::operators::operators))
        .route("/tokens", get(pages::operators::tokens).post(pages::operators::create))
        .route("/tokens/{id}/revoke", post(pages::operators::revoke))
        .route("/audit", get(pages::audit::page))
        .route("/audit/verify", get(pages::audit::verify))
        .route("/servers", get(pages::servers::page))
        .route(
            "/servers/import",
            get(pages::import::page)
                .post(pages::import::post)
                .layer(axum::extract::DefaultBodyLimit::max(pages::import::MAX_UPLOAD)),
        )
        .route("/login/{ticket}", get(pages::login::ticket))
        .route("/login", post(pages::login::redeem))
        .route("/logout", post(pages::login::logout))
        .route(
            "/assets/style.css",
            get(|| async { asset(include_str!("../assets/style.css"), "text/css") }),
        )
        .route(
            "/assets/live.js",
            get(|| async { asset(include_str!("../assets/live.js"), "text/javascript") }),
        )
        .merge(api::routes())
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .layer(axum::middleware::map_response(crate::headers::secure))
        .with_state(app)
}

/// The address to listen on: loopback only, since the console serves
/// plain HTTP (no TLS yet) and its cookies and tokens must not cross a
/// network in clear.
pub fn parse_bind(bind: &str) -> Result<SocketAddr, WebError> {
    let addr: SocketAddr = bind
        .strip_prefix("http://")
        .map(|a| a.trim_end_matches('/').replace("localhost:", "127.0.0.1:"))
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| WebError::Endpoint(bind.to_owned()))?;
    if !addr.ip().is_loopback() {
        return Err(WebError::NotLoopback(bind.to_owned()));
    }
    Ok(addr)
}

/// Tells the referee where the console is, until it has heard it.
async fn announce(referee: Referee, url: String) {
    loop {
        let call = ApiCall::Web(WebCall::Announce { url: url.clone() });
        match referee.as_tower(call).await {
            Ok(_) => {
                tracing::info!(event = "web_announced", url = %url);
                return;
            }
            Err(e) => tracing::warn!(event = "web_announce_failed", error = %e.message),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Runs until `stop` says so.
pub fn serve(cfg: WebConfig, stop: impl Fn() -> bool + Send + 'static) -> Result<(), WebError> {
    let addr = parse_bind(&cfg.bind)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| WebError::Bind {
                addr: addr.to_string(),
                source,
            })?;
        let local = listener.local_addr()?;
        let url = format!("http://{local}");
        let referee = Referee {
            api: cfg.api,
            orders: cfg.orders,
        };
        tokio::spawn(announce(referee.clone(), url.clone()));
        let app = Arc::new(App {
            referee,
            csrf: Csrf::new(),
            session_ms: SESSION_MS,
            secure: false,
        });
        tracing::info!(event = "web_started", url = %url);
        let shutdown = async move {
            while !stop() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        axum::serve(listener, router(app))
            .with_graceful_shutdown(shutdown)
            .await?;
        tracing::info!(event = "web_stopped");
        Ok(())
    })
}
