//! An HTTP load loop for zero-downtime tests: one thread sends GET
//! requests to an address, one new connection each (`Connection: close`,
//! so a reload's closed keep-alive is never mistaken for a failure or
//! hidden by a retry), until stopped, and counts what it got. A 503 that
//! carries `Retry-After` is a maintenance page, counted apart: it is what
//! a deploy with migrations answers on purpose, not a failure.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// What a load loop saw.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub served: u64,
    /// 503 answers with a `Retry-After` header (maintenance).
    pub maintenance: u64,
    /// Each failed request: what went wrong (connect error, status, …).
    pub failures: Vec<String>,
    /// The bodies, in order, with runs of the same body collapsed
    /// ([`MAINTENANCE`] for a maintenance answer).
    pub answers: Vec<String>,
    /// When each of `answers` was first seen, since the loop started.
    pub answer_times: Vec<Duration>,
    /// Every answered request (served or maintenance): the wall-clock time
    /// it was sent, and the index in `answers` of what it got. Compared
    /// with the tower's event times, it tells what a request sent after a
    /// switch completed got, whatever the machine's load.
    pub sent: Vec<(SystemTime, usize)>,
    /// The longest request.
    pub slowest: Duration,
}

pub struct LoadLoop {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<LoadReport>>,
}

/// How a maintenance answer shows in [`LoadReport::answers`].
pub const MAINTENANCE: &str = "503 maintenance";

/// An HTTP answer: status, headers (names lowercased), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A maintenance page: 503 with a `Retry-After` of whole seconds.
    pub fn is_maintenance(&self) -> bool {
        self.status == 503
            && self
                .header("retry-after")
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
    }
}

/// One GET of `path`, whatever its status.
pub fn request(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Answer, String> {
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line: {head:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Answer {
        status,
        headers,
        body: body.trim().to_string(),
    })
}

/// One GET of `path`: the body of a 200, or why not.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String, String> {
    let answer = request(addr, path, timeout)?;
    if answer.status != 200 {
        return Err(format!("status {}: {}", answer.status, answer.body));
    }
    Ok(answer.body)
}

impl LoadLoop {
    /// Starts sending requests to `addr` until `stop` (or `max`, a bound
    /// so a forgotten loop cannot run for ever).
    pub fn start(addr: SocketAddr, max: Duration) -> LoadLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut report = LoadReport::default();
            let began = Instant::now();
            while !flag.load(Ordering::Relaxed) && began.elapsed() < max {
                let t0 = Instant::now();
                let sent = SystemTime::now();
                let mut seen = |body: &str| {
                    if report.answers.last().map(String::as_str) != Some(body) {
                        report.answers.push(body.to_string());
                        report.answer_times.push(began.elapsed());
                    }
                    report.sent.push((sent, report.answers.len() - 1));
                };
                match request(addr, "/", Duration::from_secs(5)) {
                    Ok(a) if a.status == 200 => {
                        seen(&a.body);
                        report.served += 1;
                    }
                    Ok(a) if a.is_maintenance() => {
                        seen(MAINTENANCE);
                        report.maintenance += 1;
                    }
                    Ok(a) => report
                        .failures
                        .push(format!("status {}: {}", a.status, a.body)),
                    Err(why) => report.failures.push(why),
                }
                report.slowest = report.slowest.max(t0.elapsed());
            }
            report
        });
        LoadLoop {
            stop,
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for LoadLoop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
