//! Lifecycle events: the launcher's own and those its children log, all
//! published on the lifecycle PUB socket and written to the launcher's
//! stderr — as one JSON object per line with `--log-json`, the event's
//! fields at the top level plus `source`. The socket is an XPUB: a new
//! subscription is news to the launcher, which answers it with the
//! health snapshot (`HEALTH_TOPIC`), published on the socket only.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::Sender;

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use vigie_wire::lifecycle::{LifecycleEvent, TowerHealth, HEALTH_TOPIC};

pub struct Events {
    sock: zmq::Socket,
    json: bool,
    quiet: bool,
    observer: Option<Sender<LifecycleEvent>>,
    /// Lines for stderr not written yet: the supervisor flushes when no
    /// message waits (one write(2) for a burst, not one or more a line).
    out: RefCell<Vec<u8>>,
}

/// Buffered bytes past which the lines are written at once.
const OUT_FLUSH_BYTES: usize = 64 << 10;

/// Fields a child's log line carries that are not the event's own, and
/// `source`, which names the child in the launcher's line (no daemon's
/// event has a field of that name).
const OMITTED: [&str; 5] = ["timestamp", "level", "target", "event", "source"];

/// RFC 3339 in UTC to the millisecond, as the children's own lines (and
/// every time `--json` prints): one format for every line of a log.
fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl Events {
    pub fn bind(
        ctx: &zmq::Context,
        endpoint: &str,
        json: bool,
        quiet: bool,
        observer: Option<Sender<LifecycleEvent>>,
    ) -> Result<Self, zmq::Error> {
        let sock = ctx.socket(zmq::XPUB)?;
        // Every subscription, not only a topic's first: a daemon that
        // restarts subscribes again and must get the snapshot again.
        sock.set_xpub_verbose(true)?;
        sock.set_sndhwm(100_000)?;
        sock.set_linger(500)?;
        sock.bind(endpoint)?;
        Ok(Self {
            sock,
            json,
            quiet,
            observer,
            out: RefCell::new(Vec::with_capacity(OUT_FLUSH_BYTES)),
        })
    }

    /// Writes the buffered lines to stderr.
    pub fn flush(&self) {
        let mut out = self.out.borrow_mut();
        if !out.is_empty() {
            // Nowhere to say that stderr is gone.
            let _ = std::io::stderr().lock().write_all(&out);
            out.clear();
        }
    }

    fn line(&self, write: impl FnOnce(&mut Vec<u8>)) {
        let mut out = self.out.borrow_mut();
        write(&mut out);
        out.push(b'\n');
        if out.len() >= OUT_FLUSH_BYTES {
            drop(out);
            self.flush();
        }
    }

    /// Publishes an event on the socket only.
    fn publish(&self, ev: &LifecycleEvent) {
        if let Ok(frame) = vigie_wire::encode(ev) {
            // A lifecycle subscriber that cannot keep up loses events, the
            // tower does not slow down for it.
            let _ = self
                .sock
                .send_multipart([ev.name.as_bytes(), &frame], zmq::DONTWAIT);
        }
    }

    /// Publishes the daemons' states (not logged: the per-child events
    /// say the same).
    pub fn health(&self, health: &TowerHealth) {
        if let Ok(fields_json) = serde_json::to_string(health) {
            self.publish(&LifecycleEvent {
                source: "launcher".into(),
                name: HEALTH_TOPIC.into(),
                fields_json,
            });
        }
    }

    /// Whether someone subscribed to the health snapshot since the last
    /// look (a subscription to a prefix of its topic counts). Never waits.
    pub fn health_wanted(&self) -> bool {
        let mut wanted = false;
        while let Ok(msg) = self.sock.recv_bytes(zmq::DONTWAIT) {
            if let Some((&1, topic)) = msg.split_first() {
                wanted |= HEALTH_TOPIC.as_bytes().starts_with(topic);
            }
        }
        wanted
    }

    /// The launcher's own events (few, and waited for) are written at once.
    pub fn emit(&self, source: &str, name: &str, fields: Map<String, Value>) {
        let fields_json = Value::Object(fields).to_string();
        self.send(source, name, fields_json);
        self.flush();
    }

    /// Publishes an event whose fields are one JSON object's text, hands
    /// it to the observer and writes its line.
    fn send(&self, source: &str, name: &str, fields_json: String) {
        let ev = LifecycleEvent {
            source: source.to_owned(),
            name: name.to_owned(),
            fields_json,
        };
        self.publish(&ev);
        if !self.quiet {
            self.write_line(&ev);
        }
        if let Some(o) = &self.observer {
            let _ = o.send(ev);
        }
    }

    /// `--log-json`: the time, the event, its source, then its fields;
    /// otherwise `source event key=value...`.
    fn write_line(&self, ev: &LifecycleEvent) {
        let fields = ev.fields_json.trim();
        let body = fields
            .strip_prefix('{')
            .and_then(|f| f.strip_suffix('}'))
            .unwrap_or_default()
            .trim();
        if self.json {
            let head = serde_json::json!({
                "timestamp": rfc3339(std::time::SystemTime::now()),
                "event": ev.name,
                "source": ev.source,
            })
            .to_string();
            self.line(|out| {
                out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
                if !body.is_empty() {
                    out.push(b',');
                    out.extend_from_slice(body.as_bytes());
                }
                out.push(b'}');
            });
            return;
        }
        let rest = serde_json::from_str::<BTreeMap<Cow<str>, &RawValue>>(fields)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k}={}", v.get()))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        self.line(|out| {
            let _ = write!(out, "{:<14} {:<18} {}", ev.source, ev.name, rest);
        });
    }

    /// Forwards one stderr line of a child: an event keeps its fields, as
    /// the child wrote them (not parsed into values and printed again);
    /// any other line (a panic, an error message) becomes `child_output`.
    pub fn forward(&self, source: &str, line: &str) -> Option<String> {
        if let Some((name, fields_json)) = event_of(line) {
            self.send(source, &name, fields_json);
            return Some(name);
        }
        let m = Value::Object(fields([("line", Value::String(line.to_owned()))]));
        self.send(source, "child_output", m.to_string());
        None
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.flush();
    }
}

/// A child's event line: its name, and its fields (envelope and `source`
/// left out) as one JSON object's text.
fn event_of(line: &str) -> Option<(String, String)> {
    let m: BTreeMap<Cow<str>, &RawValue> = serde_json::from_str(line).ok()?;
    let name: String = serde_json::from_str(m.get("event")?.get()).ok()?;
    let mut fields = String::with_capacity(line.len());
    fields.push('{');
    for (k, v) in m.iter().filter(|(k, _)| !OMITTED.contains(&k.as_ref())) {
        if fields.len() > 1 {
            fields.push(',');
        }
        fields.push_str(&serde_json::to_string(k).ok()?);
        fields.push(':');
        fields.push_str(v.get());
    }
    fields.push('}');
    Some((name, fields))
}

/// Builds a field map from pairs.
pub fn fields<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

#[cfg(test)]
mod tests {
    /// `--log-json` lines of the launcher carry RFC 3339 times, not
    /// seconds since 1970 as text.
    #[test]
    fn timestamps_are_rfc3339() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_764_950_400_250);
        assert_eq!(super::rfc3339(t), "2025-12-05T16:00:00.250Z");
    }

    /// A child's event reaches subscribers with its own fields as it
    /// wrote them (nested values, escapes, numbers), without the envelope.
    #[test]
    fn a_childs_event_keeps_its_fields_and_loses_its_envelope() {
        let line = r#"{"timestamp":"2026-12-07T09:00:00.000Z","level":"INFO","event":"change_queued","target":"vigie_referee::core::turn","host":"h\u001b[2J","seq":7,"labels":{"a":"b"},"say\"s":[1,2.5]}"#;
        let (name, fields) = super::event_of(line).expect("an event");
        assert_eq!(name, "change_queued");
        let v: serde_json::Value = serde_json::from_str(&fields).expect("one JSON object");
        assert_eq!(
            v,
            serde_json::json!({"host": "h\u{1b}[2J", "seq": 7, "labels": {"a": "b"}, "say\"s": [1, 2.5]})
        );
        assert!(super::event_of("thread 'main' panicked at src/x.rs:1:1").is_none());
        assert!(
            super::event_of(r#"{"event":7}"#).is_none(),
            "a name is a string"
        );
    }
}
