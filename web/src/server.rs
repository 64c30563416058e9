//! The web daemon: one listener — plain HTTP on loopback, TLS anywhere
//! (`https://`) — the routes of the console and of the API, embedded
//! assets, and the announcement of its URL to the referee (for `vigie web
//! login`'s URLs).

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
    fn plain_http_is_for_loopback_only() {
        assert!(!super::parse_bind("http://127.0.0.1:0").unwrap().1);
        assert!(!super::parse_bind("http://127.0.0.2:0").unwrap().1);
        assert!(!super::parse_bind("http://[::1]:7180").unwrap().1);
        assert!(super::parse_bind("http://0.0.0.0:7180").is_err());
        assert!(super::parse_bind("http://10.0.0.1:7180").is_err());
        assert!(super::parse_bind("http://[::]:7180").is_err());
        assert!(super::parse_bind("https://10.0.0.1:7180").unwrap().1);
        assert!(super::parse_bind("https://127.0.0.1:7180").unwrap().1);
        assert!(super::parse_bind("tcp://127.0.0.1:7180").is_err());
    }
}

#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `http://IP:PORT` on loopback, or `https://IP:PORT` anywhere (port
    /// 0: any free port).
    pub bind: String,
    pub api: String,
    pub orders: String,
    /// The certificate of an `https://` endpoint.
    pub tls: Option<crate::tls::TlsFiles>,
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
        .route(
            "/deployments/{app}/{env}/events",
            get(pages::deploys::events),
        )
        .route(
            "/deployments/{app}/{env}/{verb}",
            get(pages::deploys::confirm).post(pages::deploys::act),
        )
        .route("/pools", get(pages::pools::list))
        .route("/pools/{name}", get(pages::pools::one))
        .route("/operators", get(pages::operators::operators))
        .route(
            "/tokens",
            get(pages::operators::tokens).post(pages::operators::create),
        )
        .route("/tokens/{id}/revoke", post(pages::operators::revoke))
        .route("/audit", get(pages::audit::page))
        .route("/audit/verify", get(pages::audit::verify))
        .route("/servers", get(pages::servers::page))
        .route(
            "/servers/import",
            get(pages::import::page).post(pages::import::post).layer(
                axum::extract::DefaultBodyLimit::max(pages::import::MAX_UPLOAD),
            ),
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

/// The address to listen on and whether over TLS: plain HTTP on loopback
/// only (127.0.0.0/8, ::1), since its cookies and tokens must not cross a
/// network in clear; `https://` anywhere.
pub fn parse_bind(bind: &str) -> Result<(SocketAddr, bool), WebError> {
    let (rest, tls) = match (bind.strip_prefix("http://"), bind.strip_prefix("https://")) {
        (Some(r), _) => (r, false),
        (_, Some(r)) => (r, true),
        _ => return Err(WebError::Endpoint(bind.to_owned())),
    };
    let addr: SocketAddr = rest
        .trim_end_matches('/')
        .replace("localhost:", "127.0.0.1:")
        .parse()
        .map_err(|_| WebError::Endpoint(bind.to_owned()))?;
    if !tls && !addr.ip().is_loopback() {
        return Err(WebError::NotLoopback(bind.to_owned()));
    }
    Ok((addr, tls))
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
    let (addr, tls) = parse_bind(&cfg.bind)?;
    let tls = match (tls, &cfg.tls) {
        (false, _) => None,
        (true, Some(files)) => Some(crate::tls::server_config(files, addr)?),
        (true, None) => return Err(WebError::Tls(
            "an https:// endpoint needs a certificate (--keys DIR, or --tls-cert and --tls-key)"
                .into(),
        )),
    };
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
        let url = format!("{}://{local}", if tls.is_some() { "https" } else { "http" });
        let referee = Referee {
            api: cfg.api,
            orders: cfg.orders,
        };
        tokio::spawn(announce(referee.clone(), url.clone()));
        let app = Arc::new(App {
            referee,
            csrf: Csrf::new(),
            session_ms: SESSION_MS,
            secure: tls.is_some(),
        });
        tracing::info!(event = "web_started", url = %url);
        let shutdown = async move {
            while !stop() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        match tls {
            None => {
                axum::serve(listener, router(app))
                    .with_graceful_shutdown(shutdown)
                    .await?
            }
            Some(config) => {
                let listener = crate::tls::TlsListener::new(listener, config)?;
                axum::serve(listener, router(app))
                    .with_graceful_shutdown(shutdown)
                    .await?
            }
        }
        tracing::info!(event = "web_stopped");
        Ok(())
    })
}
