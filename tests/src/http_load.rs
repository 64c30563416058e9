//! An HTTP load loop for zero-downtime tests: one thread sends GET
//! requests to an address, one new connection each (`Connection: close`,
//! so a reload's closed keep-alive is never mistaken for a failure or
//! hidden by a retry), until stopped, and counts what it got.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a load loop saw.
#[derive(Debug, Default, Clone)]
pub struct LoadReport {
    pub served: u64,
    /// Each failed request: what went wrong (connect error, status, …).
    pub failures: Vec<String>,
    /// The bodies, in order, with runs of the same body collapsed.
    pub answers: Vec<String>,
    /// The longest request.
    pub slowest: Duration,
}

pub struct LoadLoop {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<LoadReport>>,
}

/// One GET of `path`: the body of a 200, or why not.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<String, String> {
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
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(format!("status {status}: {}", body.trim()));
    }
    Ok(body.trim().to_string())
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
                match get(addr, "/", Duration::from_secs(5)) {
                    Ok(body) => {
                        report.served += 1;
                        if report.answers.last() != Some(&body) {
                            report.answers.push(body);
                        }
                    }
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
