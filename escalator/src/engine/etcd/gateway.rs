//! etcd's JSON gateway (the gRPC API as HTTP/1.1 POSTs under `/v3/`,
//! bytes in base64), over `ureq`: no async runtime, no protobuf compiler
//! at build time. Endpoints are tried in turn when one cannot be reached;
//! a request that was sent is never resent here (its fate is unknown).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use crate::engine::EngineError;

pub fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A bytes field of an answer; proto3's JSON leaves empty ones out.
pub fn bytes_of(v: &Value, field: &str) -> Result<Vec<u8>, EngineError> {
    match v.get(field).and_then(Value::as_str) {
        None => Ok(Vec::new()),
        Some(s) => STANDARD
            .decode(s)
            .map_err(|e| EngineError::Etcd(format!("field {field} is not base64: {e}"))),
    }
}

/// An int64 field: the gateway writes them as strings.
pub fn int_of(v: &Value, field: &str) -> i64 {
    match v.get(field) {
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        Some(n) => n.as_i64().unwrap_or(0),
        None => 0,
    }
}

#[derive(Debug)]
pub struct Gateway {
    agent: ureq::Agent,
    endpoints: Vec<String>,
    /// The endpoint that answered last: tried first.
    current: usize,
}

impl Gateway {
    /// `endpoints`: `http://HOST:PORT` client URLs of the cluster's members.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<Self, EngineError> {
        if endpoints.is_empty() {
            return Err(EngineError::Etcd("no etcd endpoint given".into()));
        }
        if let Some(bad) = endpoints.iter().find(|e| !e.starts_with("http://")) {
            return Err(EngineError::Etcd(format!(
                "etcd endpoint {bad:?} must be http://HOST:PORT"
            )));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(timeout.min(Duration::from_secs(2)))
            .timeout(timeout)
            .build();
        Ok(Self {
            agent,
            endpoints: endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_owned())
                .collect(),
            current: 0,
        })
    }

    /// POSTs `body` to `/v3/<path>` and returns the answer; an endpoint that
    /// cannot be reached passes the request to the next.
    pub fn call(&mut self, path: &str, body: &Value) -> Result<Value, EngineError> {
        let text = body.to_string();
        let mut last = String::new();
        for i in 0..self.endpoints.len() {
            let at = (self.current + i) % self.endpoints.len();
            let url = format!("{}/v3/{path}", self.endpoints[at]);
            match self.agent.post(&url).send_string(&text) {
                Ok(resp) => {
                    self.current = at;
                    let s = resp.into_string().map_err(|e| etcd_err(&url, &e))?;
                    return serde_json::from_str(&s).map_err(|e| etcd_err(&url, &e));
                }
                Err(ureq::Error::Status(code, resp)) => {
                    self.current = at;
                    let s = resp.into_string().unwrap_or_default();
                    let msg = serde_json::from_str::<Value>(&s)
                        .ok()
                        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                        .unwrap_or(s);
                    return Err(EngineError::Etcd(format!("{url}: {code} {msg}")));
                }
                Err(ureq::Error::Transport(t)) if t.kind() == ureq::ErrorKind::ConnectionFailed => {
                    last = format!("{url}: {t}");
                }
                Err(e) => return Err(etcd_err(&url, &e)),
            }
        }
        Err(EngineError::Etcd(format!(
            "no etcd endpoint reachable (last: {last})"
        )))
    }

    /// Crash-point testing: sends the request on a raw connection, cut
    /// after `cut` bytes of its body and closed — a tower that died
    /// mid-request — or (`None`) whole, its answer read and dropped — a
    /// tower that died before reading it.
    pub fn send_torn(
        &self,
        path: &str,
        body: &Value,
        cut: Option<usize>,
    ) -> Result<(), EngineError> {
        let base = &self.endpoints[self.current];
        let host = base.trim_start_matches("http://");
        let text = body.to_string();
        let head = format!(
            "POST /v3/{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
            text.len()
        );
        let sent = cut.map_or(text.len(), |c| c.min(text.len()));
        let mut s = TcpStream::connect(host).map_err(|e| etcd_err(base, &e))?;
        s.write_all(head.as_bytes())
            .and_then(|()| s.write_all(&text.as_bytes()[..sent]))
            .and_then(|()| s.flush())
            .map_err(|e| etcd_err(base, &e))?;
        if cut.is_none() {
            // Wait for the answer so the request's fate is settled.
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
        }
        Ok(())
    }
}

fn etcd_err(url: &str, e: &dyn std::fmt::Display) -> EngineError {
    EngineError::Etcd(format!("{url}: {e}"))
}
