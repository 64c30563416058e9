//! A keep-alive HTTP client beside [`crate::http_load`]'s new-connection
//! one: one thread sends GET requests one after another on one HTTP/1.1
//! connection, kept open, and opens another only when the server closed
//! it. What a reload of nginx does to such a client is what it counts:
//! a request that got no answer at all because its connection was closed
//! under it (what a browser or an HTTP library retries on its own for an
//! idempotent request, RFC 9112 §9.3.1), apart from any other failure.
//! Nothing is retried here, so nothing is hidden.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a keep-alive client saw.
#[derive(Debug, Default, Clone)]
pub struct KeepAliveReport {
    /// Requests answered 200.
    pub served: u64,
    /// Requests sent on a connection the server closed before any byte
    /// of the answer (a reload closing an idle keep-alive connection).
    pub closed_unanswered: Vec<String>,
    /// Every other failure: a status other than 200, a cut answer, a
    /// connection refused.
    pub failures: Vec<String>,
    /// Connections opened.
    pub connections: u64,
    /// The bodies, runs of the same body collapsed.
    pub answers: Vec<String>,
}

impl KeepAliveReport {
    /// Requests that got no 200, of either kind.
    pub fn failed(&self) -> usize {
        self.closed_unanswered.len() + self.failures.len()
    }
}

/// How one request on a kept connection went.
enum Got {
    Answer(u16, String),
    /// Closed before any byte came back.
    Closed(String),
    Failed(String),
}

fn connect(addr: SocketAddr) -> std::io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::new(stream))
}

/// One GET on `conn`; `close` is set when the server said it closes.
fn one(conn: &mut BufReader<TcpStream>, addr: SocketAddr, close: &mut bool) -> Got {
    let request = format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    if let Err(e) = conn.get_mut().write_all(request.as_bytes()) {
        return Got::Closed(format!("write: {e}"));
    }
    let mut status_line = String::new();
    match conn.read_line(&mut status_line) {
        Ok(0) => return Got::Closed("closed before answering".into()),
        Err(e) if status_line.is_empty() => return Got::Closed(format!("read: {e}")),
        Err(e) => return Got::Failed(format!("read: {e}")),
        Ok(_) => {}
    }
    let Some(status) = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return Got::Failed(format!("no status line: {status_line:?}"));
    };
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        match conn.read_line(&mut line) {
            Ok(0) => return Got::Failed("cut in the headers".into()),
            Err(e) => return Got::Failed(format!("headers: {e}")),
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            if name == "content-length" {
                length = value.parse().unwrap_or(0);
            } else if name == "connection" && value.eq_ignore_ascii_case("close") {
                *close = true;
            }
        }
    }
    let mut body = vec![0; length];
    if let Err(e) = conn.read_exact(&mut body) {
        return Got::Failed(format!("body: {e}"));
    }
    Got::Answer(status, String::from_utf8_lossy(&body).trim().to_string())
}

pub struct KeepAliveLoop {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<KeepAliveReport>>,
}

impl KeepAliveLoop {
    /// Sends requests to `addr` on kept connections until stopped (or
    /// `max`, so a forgotten loop ends).
    pub fn start(addr: SocketAddr, max: Duration) -> KeepAliveLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut report = KeepAliveReport::default();
            let began = Instant::now();
            let mut conn: Option<BufReader<TcpStream>> = None;
            while !flag.load(Ordering::Relaxed) && began.elapsed() < max {
                let c = match conn.take() {
                    Some(c) => c,
                    None => match connect(addr) {
                        Ok(c) => {
                            report.connections += 1;
                            c
                        }
                        Err(e) => {
                            report.failures.push(format!("connect: {e}"));
                            continue;
                        }
                    },
                };
                let mut c = c;
                let mut close = false;
                match one(&mut c, addr, &mut close) {
                    Got::Answer(200, body) => {
                        report.served += 1;
                        if report.answers.last() != Some(&body) {
                            report.answers.push(body);
                        }
                        if !close {
                            conn = Some(c);
                        }
                    }
                    Got::Answer(status, body) => {
                        report.failures.push(format!("status {status}: {body}"));
                    }
                    Got::Closed(why) => report.closed_unanswered.push(why),
                    Got::Failed(why) => report.failures.push(why),
                }
            }
            report
        });
        KeepAliveLoop {
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) -> KeepAliveReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for KeepAliveLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
