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
