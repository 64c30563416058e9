//! A driver that touches nothing and succeeds at once: fleets of
//! thousands of simulated hosts in benchmarks cost no I/O.

use std::path::Path;

use vigie_wire::change::{Action, StepResult};

use crate::{Driver, DriverError};

#[derive(Debug, Default, Clone, Copy)]
pub struct NoopDriver;

impl NoopDriver {
    pub fn new() -> Self {
        NoopDriver
    }
}

impl Driver for NoopDriver {
    fn name(&self) -> &'static str {
        "noop"
    }

    fn prepare(&mut self, _action: &Action, _stash: &Path) -> Result<(), DriverError> {
        Ok(())
    }

    fn apply(&mut self, action: &Action, _stash: &Path) -> StepResult {
        StepResult::ok(format!("noop {}", action.kind()))
    }

    fn undo(&mut self, action: &Action, _stash: &Path) -> StepResult {
        StepResult::ok(format!("noop undo {}", action.kind()))
    }
}
