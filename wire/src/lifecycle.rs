//! The launcher's lifecycle events, published on its PUB socket with the
//! event's name as topic (subscribe to `step_` for every step event).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    /// Who emitted it: `launcher`, `escalator`, `referee`, `plug:<host>`.
    pub source: String,
    /// One stable word: `child_exited`, `referee_started`, `step_started` …
    pub name: String,
    /// The event's other fields, as a JSON object.
    pub fields_json: String,
}

/// The topic (and event name) of the launcher's health snapshot: every
/// daemon's state, published on the lifecycle socket whenever one changes
/// and whenever someone subscribes, so a daemon that (re)starts learns the
/// current states without waiting for the next change. Never written to
/// the launcher's log (the per-child events say the same, one at a time).
pub const HEALTH_TOPIC: &str = "tower_health";

/// Where a daemon of the tower stands, as its launcher sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DaemonState {
    /// Started, not yet said it is ready.
    Starting,
    Running,
    /// It exited; the launcher starts it again at `until_ms` (unix ms).
    BackingOff {
        until_ms: u64,
    },
    /// Not running and not to be started again (before its first start,
    /// or while the tower stops).
    Stopped,
}

/// One daemon of the tower: escalator, referee, majordomo, metrics,
/// provisioner or `plug:<host>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonHealth {
    pub name: String,
    pub state: DaemonState,
    /// When it entered `state` (unix ms).
    pub since_ms: u64,
    /// How many times the launcher started it again after an exit.
    pub restarts: u32,
    /// Its last exit while the tower ran (`exit 1`, `killed by SIGKILL`).
    pub last_exit: Option<String>,
    /// When that exit happened (unix ms).
    pub last_exit_ms: Option<u64>,
}

impl DaemonHealth {
    /// The host this daemon is the plug of, if it is one.
    pub fn host(&self) -> Option<&str> {
        self.name.strip_prefix("plug:")
    }

    /// Why it does not serve, in a few words, or `None` while it runs:
    /// `restarting: exit 1, next try in 2m`.
    pub fn down_reason(&self, now_ms: u64) -> Option<String> {
        let exit = self.last_exit.as_deref().unwrap_or("exited");
        match self.state {
            DaemonState::Running => None,
            DaemonState::Starting => Some("starting".into()),
            DaemonState::BackingOff { until_ms } => Some(format!(
                "restarting: {exit}, next try in {}",
                short_duration(until_ms.saturating_sub(now_ms))
            )),
            DaemonState::Stopped => Some("stopped".into()),
        }
    }
}

/// Every daemon's state at `at_ms` (unix ms), in start order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TowerHealth {
    pub at_ms: u64,
    pub daemons: Vec<DaemonHealth>,
}

impl TowerHealth {
    pub fn get(&self, name: &str) -> Option<&DaemonHealth> {
        self.daemons.iter().find(|d| d.name == name)
    }
}

/// `850ms`, `12s`, `2m`, `1h5m`: a delay as an operator reads it.
pub fn short_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 if s.is_multiple_of(60) => format!("{}m", s / 60),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        _ if s % 3600 < 60 => format!("{}h", s / 3600),
        _ => format!("{}h{}m", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backing_off_daemon_says_why_and_when() {
        let d = DaemonHealth {
            name: "plug:web-1".into(),
            state: DaemonState::BackingOff { until_ms: 130_000 },
            since_ms: 10_000,
            restarts: 6,
            last_exit: Some("exit 1".into()),
            last_exit_ms: Some(10_000),
        };
        assert_eq!(d.host(), Some("web-1"));
        assert_eq!(
            d.down_reason(10_000).as_deref(),
            Some("restarting: exit 1, next try in 2m")
        );
        let running = DaemonHealth {
            state: DaemonState::Running,
            ..d
        };
        assert_eq!(running.down_reason(0), None);
        assert_eq!(short_duration(450), "450ms");
        assert_eq!(short_duration(90_000), "1m30s");
        assert_eq!(short_duration(3_900_000), "1h5m");
        assert_eq!(short_duration(7_230_000), "2h");
    }

    #[test]
    fn a_snapshot_survives_json_and_the_wire() {
        let h = TowerHealth {
            at_ms: 5,
            daemons: vec![DaemonHealth {
                name: "provisioner".into(),
                state: DaemonState::BackingOff { until_ms: 9 },
                since_ms: 1,
                restarts: 2,
                last_exit: None,
                last_exit_ms: None,
            }],
        };
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<TowerHealth>(&json).unwrap(), h);
        let frame = crate::encode(&h).unwrap();
        assert_eq!(crate::decode::<TowerHealth>(&frame).unwrap(), h);
    }
}
