//! Lifecycle events: the launcher's own and those its children log, all
//! published on the lifecycle PUB socket and written to the launcher's
//! stderr — as one JSON object per line with `--log-json`, the event's
//! fields at the top level plus `source`. The socket is an XPUB: a new
//! subscription is news to the launcher, which answers it with the
//! health snapshot (`HEALTH_TOPIC`), published on the socket only.

use std::sync::mpsc::Sender;

use serde_json::{Map, Value};
use vigie_wire::lifecycle::{LifecycleEvent, TowerHealth, HEALTH_TOPIC};

pub struct Events {
    sock: zmq::Socket,
    json: bool,
    quiet: bool,
    observer: Option<Sender<LifecycleEvent>>,
}

/// Fields a child's log line carries that are not the event's own.
const ENVELOPE: [&str; 4] = ["timestamp", "level", "target", "event"];

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
        })
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

    pub fn emit(&self, source: &str, name: &str, fields: Map<String, Value>) {
        let fields_json = Value::Object(fields.clone()).to_string();
        let ev = LifecycleEvent {
            source: source.to_owned(),
            name: name.to_owned(),
            fields_json,
        };
        self.publish(&ev);
        if let Some(o) = &self.observer {
            let _ = o.send(ev);
        }
        if self.quiet {
            return;
        }
        if self.json {
            let mut line = Map::new();
            line.insert(
                "timestamp".into(),
                Value::String(rfc3339(std::time::SystemTime::now())),
            );
            line.insert("event".into(), Value::String(name.to_owned()));
            line.insert("source".into(), Value::String(source.to_owned()));
            line.extend(fields);
            eprintln!("{}", Value::Object(line));
        } else {
            let rest: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            eprintln!("{:<14} {:<18} {}", source, name, rest.join(" "));
        }
    }

    /// Forwards one stderr line of a child: an event keeps its fields; any
    /// other line (a panic, an error message) becomes `child_output`.
    pub fn forward(&self, source: &str, line: &str) -> Option<String> {
        if let Ok(Value::Object(mut m)) = serde_json::from_str::<Value>(line) {
            if let Some(Value::String(name)) = m.get("event").cloned() {
                for k in ENVELOPE {
                    m.remove(k);
                }
                self.emit(source, &name, m);
                return Some(name);
            }
        }
        let mut m = Map::new();
        m.insert("line".into(), Value::String(line.to_owned()));
        self.emit(source, "child_output", m);
        None
    }
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
}
