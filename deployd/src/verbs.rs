//! Verbs on a deployed environment (`vigie deployments stop|rollback|…`)
//! in the daemon: the stored rollout's verb becomes the deployer's
//! `VerbRollout` (new, or resumed from its recorded state), which the
//! same driver carries out as a deploy's; and what a change of `clean`
//! printed is read back for the operator.

use vigie_deployer::{Environment, Machine, VerbRollout, VerbState, CLEAN_STEP};
use vigie_wire::deploy::{EnvVerb, Rollout as Stored};
use vigie_wire::tower::ChangeView;

use crate::error::DeploydError;

/// The machine of a stored verb rollout.
pub fn build(env: Environment, stored: &Stored, verb: &EnvVerb) -> Result<Machine, DeploydError> {
    if stored.state.is_empty() {
        let by = (stored.operator.clone(), stored.started_ms);
        let m = VerbRollout::new(env, stored.id.clone(), verb.clone(), by);
        return Ok(Machine::Verb(Box::new(m)));
    }
    let state: VerbState =
        serde_json::from_slice(&stored.state).map_err(|e| DeploydError::State(e.to_string()))?;
    Ok(Machine::Verb(Box::new(VerbRollout::resume(env, state))))
}

/// The output of a change's `clean` step, if it has one.
pub fn told(view: &ChangeView) -> Option<String> {
    view.steps
        .iter()
        .find(|s| s.name == CLEAN_STEP)
        .and_then(|s| s.result.as_ref())
        .map(|r| r.stdout_tail.clone())
        .filter(|t| !t.is_empty())
}
