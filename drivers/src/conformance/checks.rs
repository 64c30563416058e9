//! Conformance: `check` steps (commands and HTTP probes, retries, timeouts).

#![allow(clippy::unwrap_used)] // a test suite

use std::fs;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::host::Host;
use super::Maker;
use crate::{Action, Command, Probe};

fn check(probe: Probe, retries: u32) -> Action {
    Action::Check {
        probe,
        retries,
        interval_ms: 1,
        timeout_ms: 5_000,
    }
}

/// Counts its attempts in `$VIGIE_HOST_ROOT/count`; healthy from the
/// `healthy_from`-th attempt on (0: never).
fn counting_probe(healthy_from: u32) -> Probe {
    Probe::Command(Command::Shell(format!(
        "f=\"$VIGIE_HOST_ROOT/count\"; n=$(cat \"$f\" 2>/dev/null || echo 0); \
         n=$((n+1)); echo $n > \"$f\"; echo attempt $n; \
         [ {healthy_from} -gt 0 ] && [ $n -ge {healthy_from} ]"
    )))
}

fn attempts(host: &Host) -> String {
    fs::read_to_string(host.path("/count"))
        .unwrap()
        .trim()
        .to_string()
}

/// A command probe: healthy at once, healthy after retries, never healthy
/// (every attempt made and counted), an attempt past its timeout.
pub fn command_probe(make: Maker<'_>) {
    let mut host = Host::new(make);
    let (_, result) = host.apply(&check(counting_probe(1), 3));
    assert!(result.ok, "{}", result.summary);
    assert!(result.summary.contains("1 attempt"), "{}", result.summary);
    assert_eq!(attempts(&host), "1");

    let mut host = Host::new(make);
    let (stash, result) = host.apply(&check(counting_probe(3), 5));
    assert!(result.ok, "{}", result.summary);
    assert!(result.summary.contains("3 attempts"), "{}", result.summary);
    assert_eq!(attempts(&host), "3");
    let before = host.snapshot();
    let undone = host.undo(&check(counting_probe(3), 5), &stash);
    assert!(undone.ok);
    assert_eq!(host.snapshot(), before, "undoing a check does nothing");

    let mut host = Host::new(make);
    let (_, result) = host.apply(&check(counting_probe(0), 2));
    assert!(!result.ok, "{}", result.summary);
    assert!(result.summary.contains("3 attempts"), "{}", result.summary);
    assert_eq!(attempts(&host), "3");
    assert_eq!(result.exit_code, Some(1));
    assert_eq!(result.stdout_tail, "attempt 3\n");

    let mut host = Host::new(make);
    let slow = Action::Check {
        probe: Probe::Command(Command::Shell("sleep 30".into())),
        retries: 1,
        interval_ms: 1,
        timeout_ms: 200,
    };
    let (_, result) = host.apply(&slow);
    assert!(!result.ok);
    assert!(result.summary.contains("2 attempts"), "{}", result.summary);
    assert!(result.summary.contains("timed out"), "{}", result.summary);
    assert!(result.duration_ms < 20_000, "{}", result.duration_ms);
}

/// A tiny HTTP server on 127.0.0.1: answers `script` in order, then
/// `then` for ever. Returns its URL and how many requests it answered.
fn serve(script: Vec<u16>, then: u16) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&served);
    // Left blocked in accept when the check is over; it ends with the test.
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(5))).ok();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65536 {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let n = count.fetch_add(1, Ordering::SeqCst);
            let status = script.get(n).copied().unwrap_or(then);
            let body = format!("status {status}\n");
            let _ = write!(
                stream,
                "HTTP/1.1 {status} Whatever\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, served)
}

/// An HTTP probe: healthy after a 503, never healthy on a server that
/// keeps answering 503, an expected 503, and nobody listening.
pub fn http_probe(make: Maker<'_>) {
    let mut host = Host::new(make);
    let (url, served) = serve(vec![503], 200);
    let probe = Probe::Http { url, status: 200 };
    let (_, result) = host.apply(&check(probe, 3));
    assert!(result.ok, "{}", result.summary);
    assert!(result.summary.contains("2 attempts"), "{}", result.summary);
    assert_eq!(served.load(Ordering::SeqCst), 2);

    let (url, served) = serve(vec![200], 503);
    let probe = Probe::Http { url, status: 200 };
    let (_, result) = host.apply(&check(probe.clone(), 0));
    assert!(result.ok, "{}", result.summary);
    assert!(result.summary.contains("1 attempt"), "{}", result.summary);
    let (_, result) = host.apply(&check(probe, 2));
    assert!(!result.ok, "{}", result.summary);
    assert!(result.summary.contains("3 attempts"), "{}", result.summary);
    assert!(result.summary.contains("503"), "{}", result.summary);
    assert_eq!(served.load(Ordering::SeqCst), 4);

    let (url, _) = serve(vec![], 503);
    let (_, result) = host.apply(&check(Probe::Http { url, status: 503 }, 0));
    assert!(result.ok, "{}", result.summary);

    // Redirects are not followed: the status is the one expected, or not.
    let (url, _) = serve(vec![], 302);
    let (_, result) = host.apply(&check(Probe::Http { url, status: 302 }, 0));
    assert!(result.ok, "{}", result.summary);

    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let (_, result) = host.apply(&check(Probe::Http { url, status: 200 }, 1));
    assert!(!result.ok, "nobody listening: {}", result.summary);
    assert!(result.summary.contains("2 attempts"), "{}", result.summary);
}
