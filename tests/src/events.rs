//! `EventLog`: a daemon's structured events, and waits on them that fail
//! with the list of what was seen.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One structured event: a JSON log line whose `event` field names it.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub fields: Value,
}

impl Event {
    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    pub fn u64(&self, field: &str) -> Option<u64> {
        self.fields.get(field).and_then(Value::as_u64)
    }
}

/// Every event a process emitted so far, in order, shared with the thread
/// that reads its output.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    inner: Arc<(Mutex<Vec<Event>>, Condvar)>,
}

impl EventLog {
    /// Parses one output line; lines that are not JSON events are ignored.
    pub fn push_line(&self, line: &str) {
        let Ok(fields) = serde_json::from_str::<Value>(line) else {
            return;
        };
        let Some(name) = fields.get("event").and_then(Value::as_str) else {
            return;
        };
        let ev = Event {
            name: name.to_owned(),
            fields,
        };
        let (lock, cv) = &*self.inner;
        lock.lock().unwrap_or_else(|p| p.into_inner()).push(ev);
        cv.notify_all();
    }

    pub fn snapshot(&self) -> Vec<Event> {
        self.inner
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn count(&self, name: &str) -> usize {
        self.snapshot().iter().filter(|e| e.name == name).count()
    }

    /// Waits until `n` events satisfy `pred`; returns the n-th. Fails with
    /// every event seen when `timeout` passes first.
    pub fn wait_n(
        &self,
        what: &str,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> anyhow::Result<Event> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.inner;
        let mut events = lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if let Some(e) = events.iter().filter(|e| pred(e)).nth(n.saturating_sub(1)) {
                return Ok(e.clone());
            }
            let now = Instant::now();
            if now >= deadline {
                let seen: Vec<String> = events
                    .iter()
                    .map(|e| format!("  {} {}", e.name, e.fields))
                    .collect();
                anyhow::bail!(
                    "timed out after {timeout:?} waiting for {what} (x{n}); events seen:\n{}",
                    seen.join("\n")
                );
            }
            events = cv
                .wait_timeout(events, deadline - now)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Waits for the first event named `name`.
    pub fn wait(&self, name: &str, timeout: Duration) -> anyhow::Result<Event> {
        self.wait_n(name, 1, timeout, |e| e.name == name)
    }

    /// Wakes every waiter (the process' output closed).
    pub fn close(&self) {
        self.inner.1.notify_all();
    }
}
