//! The daemon: one thread reads the lifecycle stream and counts, the
//! calling thread answers HTTP. Every request must carry the bearer token
//! (`token.rs`) or gets a bare 401, before anything is read. A scrape
//! (`GET /metrics`) reads the scrape-time gauges first, then encodes the
//! registry: what it shows is what was true during that scrape, or absent.
//! Scrapes are counted, not logged one by one (`scrape_log.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vigie_wire::lifecycle::LifecycleEvent;

use crate::error::MetricsError;
use crate::observed;
use crate::scrape_log::{Read, ScrapeLog, SUMMARY_EVERY};
use crate::snapshot::Sources;
use crate::token::Token;
use crate::tower_metrics::TowerMetrics;

/// The content type of `prometheus_client`'s text encoding.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// `http://HOST:PORT` to serve on (port 0: any free port, said in
    /// `metrics_started`).
    pub bind: String,
    /// The launcher's lifecycle PUB socket.
    pub lifecycle: String,
    /// The referee's API and orders sockets.
    pub api: String,
    pub orders: String,
    pub escalator: String,
    /// Escalator's database dir, whose size is reported.
    pub database_dir: Option<PathBuf>,
    /// How long to wait for the daemon's own probe to come back on the
    /// lifecycle stream before saying it started (`SUBSCRIBE_WAIT` under
    /// the launcher; zero where nobody republishes its events).
    pub subscribe_wait: Duration,
    /// The bearer token every request must carry (made there if missing:
    /// `DATA/keys/metrics.token` under the launcher).
    pub token_file: PathBuf,
}

/// `http://HOST:PORT` (or `HOST:PORT`) as a socket address; no name
/// resolution.
pub fn parse_bind(bind: &str) -> Result<SocketAddr, MetricsError> {
    let hostport = bind.strip_prefix("http://").unwrap_or(bind);
    let hostport = hostport.strip_suffix('/').unwrap_or(hostport);
    let hostport = if let Some(port) = hostport.strip_prefix("localhost:") {
        format!("127.0.0.1:{port}")
    } else {
        hostport.to_owned()
    };
    hostport
        .parse()
        .map_err(|_| MetricsError::Endpoint(bind.to_owned()))
}

/// How long the daemon waits, under the launcher, to see its own probe
/// come back on the lifecycle stream before it says it is started anyway.
pub const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);

fn read_lifecycle(
    endpoint: &str,
    metrics: &TowerMetrics,
    stop: &AtomicBool,
    subscribed: &std::sync::mpsc::Sender<()>,
) -> Result<(), MetricsError> {
    let ctx = zmq::Context::new();
    let sub = ctx.socket(zmq::SUB)?;
    sub.set_rcvhwm(100_000)?;
    sub.set_rcvtimeo(200)?;
    sub.set_subscribe(b"")?;
    sub.connect(endpoint)?;
    while !stop.load(Ordering::Relaxed) {
        let frames = match sub.recv_multipart(0) {
            Ok(f) => f,
            Err(zmq::Error::EAGAIN | zmq::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        };
        let Some(frame) = frames.get(1) else { continue };
        let Ok(ev) = vigie_wire::decode::<LifecycleEvent>(frame) else {
            continue;
        };
        if ev.name == "metrics_subscribing" {
            let _ = subscribed.send(());
            continue;
        }
        if let Some(o) = observed::parse(&ev.name, &ev.fields_json) {
            metrics.observe(&o);
        }
    }
    Ok(())
}

type Answer = tiny_http::Response<std::io::Cursor<Vec<u8>>>;

fn with_type(mut r: Answer, content_type: &str) -> Answer {
    if let Ok(h) = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes()) {
        r.add_header(h);
    }
    r
}

fn text(code: u16, body: &str) -> Answer {
    with_type(
        tiny_http::Response::from_string(body).with_status_code(code),
        "text/plain; charset=utf-8",
    )
}

/// 401 and nothing else: no path, no metric, no hint of what is served.
fn unauthorized() -> Answer {
    let mut r = text(401, "unauthorized\n");
    if let Ok(h) = tiny_http::Header::from_bytes(&b"WWW-Authenticate"[..], &b"Bearer"[..]) {
        r.add_header(h);
    }
    r
}

/// Whether the request carries the token (its first `Authorization`).
fn authorized(req: &tiny_http::Request, token: &Token) -> bool {
    req.headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .is_some_and(|h| token.admits(h.value.as_str()))
}

/// What the daemon answers and remembers of one request.
struct Responder<'a> {
    metrics: &'a TowerMetrics,
    sources: Sources,
    token: Token,
    log: ScrapeLog,
}

impl Responder<'_> {
    fn respond(&mut self, req: tiny_http::Request) {
        use tiny_http::Method;
        let answer = if !authorized(&req, &self.token) {
            if self.log.refused() {
                let from = req.remote_addr().map(ToString::to_string);
                tracing::info!(
                    event = "scrape_refused",
                    reason = "no valid bearer token",
                    from = from.as_deref().unwrap_or("-")
                );
            } else {
                tracing::debug!(event = "scrape_refused");
            }
            unauthorized()
        } else {
            let path = req.url().split('?').next().unwrap_or_default().to_owned();
            match (req.method(), path.as_str()) {
                (Method::Get, "/metrics") => self.scrape(),
                (Method::Get, "/") => text(200, "Vigie metrics: GET /metrics\n"),
                (Method::Get, _) => text(404, "not found: the metrics are at /metrics\n"),
                _ => text(405, "only GET is served\n"),
            }
        };
        if let Err(e) = req.respond(answer) {
            tracing::debug!(event = "scrape_unanswered", error = %e);
        }
    }

    fn scrape(&mut self) -> Answer {
        let snap = self.sources.read(&self.metrics.tenants());
        self.metrics.set_snapshot(&snap);
        let Ok(body) = self.metrics.encode() else {
            return text(500, "encoding the metrics failed\n");
        };
        let read = Read {
            referee: snap.fleet.is_some(),
            escalator: snap.escalator.is_some(),
        };
        // Said when what a scrape could read changes (whether Prometheus
        // reaches the tower, and what it sees), not at every scrape.
        if self.log.served(read) {
            tracing::info!(
                event = "scrape_served",
                referee = read.referee,
                escalator = read.escalator
            );
        } else {
            tracing::debug!(
                event = "scrape_served",
                referee = read.referee,
                escalator = read.escalator
            );
        }
        with_type(tiny_http::Response::from_string(body), CONTENT_TYPE)
    }

    fn tick(&mut self, now: Instant) {
        if let Some(s) = self.log.summary(now) {
            tracing::info!(
                event = "scrapes_counted",
                served = s.served,
                refused = s.refused,
                seconds = SUMMARY_EVERY.as_secs()
            );
        }
    }
}

/// Serves until `shutdown` is set.
pub fn serve(cfg: MetricsConfig, shutdown: Arc<AtomicBool>) -> Result<(), MetricsError> {
    let addr = parse_bind(&cfg.bind)?;
    let token = Token::ensure(&cfg.token_file)?;
    let http = tiny_http::Server::http(addr).map_err(|e| {
        tracing::error!(event = "bind_failed", endpoint = %cfg.bind, error = %e);
        MetricsError::Bind {
            addr: cfg.bind.clone(),
            reason: e.to_string(),
        }
    })?;
    let bound = http
        .server_addr()
        .to_ip()
        .map_or_else(|| cfg.bind.clone(), |a| format!("http://{a}"));
    let metrics = Arc::new(TowerMetrics::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = {
        let (m, s, ep) = (metrics.clone(), stop.clone(), cfg.lifecycle.clone());
        std::thread::spawn(move || read_lifecycle(&ep, &m, &s, &tx))
    };
    // A SUB socket misses what is published before its subscription
    // reaches the publisher: say "started" (and let the launcher start the
    // other daemons) only once our own probe came back through the
    // launcher, so no daemon's event is missed.
    let waiting = std::time::Instant::now();
    let subscribed = loop {
        tracing::info!(event = "metrics_subscribing");
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(()) => break true,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                if waiting.elapsed() < cfg.subscribe_wait && !shutdown.load(Ordering::Relaxed) => {}
            Err(_) => break false,
        }
    };
    let mut responder = Responder {
        metrics: &metrics,
        sources: Sources::new(
            &cfg.api,
            &cfg.orders,
            &cfg.escalator,
            cfg.database_dir.clone(),
        ),
        token,
        log: ScrapeLog::new(Instant::now(), SUMMARY_EVERY),
    };
    tracing::info!(event = "metrics_started", address = %bound, lifecycle = %cfg.lifecycle, subscribed);
    while !shutdown.load(Ordering::Relaxed) && !reader.is_finished() {
        match http.recv_timeout(Duration::from_millis(200)) {
            Ok(Some(req)) => responder.respond(req),
            Ok(None) => {}
            Err(e) => tracing::warn!(event = "scrape_failed", error = %e),
        }
        responder.tick(Instant::now());
    }
    stop.store(true, Ordering::Relaxed);
    let ended = reader.join();
    tracing::info!(event = "metrics_stopped");
    match ended {
        Ok(r) => r,
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_are_http_host_port() {
        assert_eq!(
            parse_bind("http://127.0.0.1:9464").ok(),
            "127.0.0.1:9464".parse().ok()
        );
        assert_eq!(parse_bind("localhost:0").ok(), "127.0.0.1:0".parse().ok());
        assert!(parse_bind("tcp://127.0.0.1").is_err());
        assert!(parse_bind("http://tower.example:9464").is_err());
    }
}
