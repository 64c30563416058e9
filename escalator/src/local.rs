//! An Escalator served from a thread of the calling process, stopped on
//! drop: for a program that embeds its own store (the benchmarks, the
//! referee's tests) instead of starting the `vigie escalator` daemon.

use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::{Client, EscalatorError, ServerConfig};

/// An Escalator running on a thread of this process, stopped on drop.
pub struct LocalServer {
    pub endpoint: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), EscalatorError>>>,
}

impl LocalServer {
    /// Serves `data` on a free loopback port, answering once this returns.
    pub fn start(data: &Path, group_commit: bool) -> Result<Self, EscalatorError> {
        let endpoint = format!("tcp://127.0.0.1:{}", free_port()?);
        let mut cfg = ServerConfig::new(data, vec![endpoint.clone()]);
        cfg.group_commit = group_commit;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || crate::serve(cfg, flag, None));
        Client::connect(&endpoint)?.ping()?;
        Ok(Self {
            endpoint,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A free loopback TCP port (bound then released: another process may
/// take it meanwhile, which the bind of `serve` then reports).
fn free_port() -> Result<u16, EscalatorError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(|e| EscalatorError::io("127.0.0.1:0", e))?;
    let port = l
        .local_addr()
        .map_err(|e| EscalatorError::io("127.0.0.1:0", e))?
        .port();
    Ok(port)
}
