//! The raw shapes of a step and of its check, every key optional as serde
//! reads them: `step.rs` checks which ones go together, `schema.rs`
//! reads them (a check through its own visitor).

use std::collections::BTreeMap;

use vigie_wire::change::Probe;

use crate::values::{
    CommandSpec, Content, DurationMs, EnvName, HostPath, HttpUrl, Label, Mode, Status, Word,
};

/// Every key a step may have; which ones go together is checked by
/// `build_step`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStep {
    pub name: Option<Label>,
    pub run: Option<CommandSpec>,
    pub undo: Option<CommandSpec>,
    pub env: Option<BTreeMap<EnvName, Word>>,
    pub cwd: Option<HostPath>,
    pub timeout: Option<DurationMs>,
    pub file: Option<HostPath>,
    pub content: Option<Content>,
    pub mode: Option<Mode>,
    pub remove: Option<HostPath>,
    pub check: Option<CheckSpec>,
    pub retries: Option<u32>,
    pub interval: Option<DurationMs>,
}

/// The mapping under `check:`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProbe {
    pub command: Option<CommandSpec>,
    pub http: Option<HttpUrl>,
    pub status: Option<Status>,
}

/// A step's check, its rules passed (read by `schema.rs`).
#[derive(Debug)]
pub(crate) struct CheckSpec(pub Probe);
