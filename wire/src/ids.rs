//! The names the tower's messages share: a host, a change, a host's labels.

use std::collections::BTreeMap;

pub type HostId = String;
pub type ChangeId = String;
pub type Labels = BTreeMap<String, String>;

/// The tower's own tenant: its daemons' calls are made in it, and the
/// first admin belongs to it.
pub const TOWER_TENANT: &str = "default";
