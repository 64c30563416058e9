//! Change-request files and host selectors.
//!
//! [`parse_change`] and [`load_change`] read a change file (YAML) into the
//! wire's [`ChangeSpec`](vigie_wire::change::ChangeSpec), enforcing every
//! rule of the format; an error names the file, the line when the parser
//! knows it, the step and the field. [`Selector`] says which hosts a
//! submission targets: one id, a list of ids, a glob, or labels;
//! [`GrantScope`] what a grant covers: those hosts, or an application's
//! environments.

mod duration;
mod error;
mod file;
mod host_id;
mod raw;
mod schema;
mod scope;
mod selector;
mod step;
mod values;

pub use duration::{parse_duration_ms, MAX_DURATION_MS};
pub use error::{ChangeError, InvalidChange, Location, StepRef};
pub use file::{load_change, parse_change, MAX_CHANGE_FILE};
pub use host_id::{validate_host_id, MAX_HOST_ID};
pub use scope::{AppScope, GrantScope};
pub use selector::{HostGlob, Selector};
pub use step::{
    DEFAULT_CHECK_INTERVAL_MS, DEFAULT_CHECK_TIMEOUT_MS, DEFAULT_HTTP_STATUS,
    DEFAULT_RUN_TIMEOUT_MS,
};
pub use values::checked_text;

#[cfg(test)]
mod tests;
