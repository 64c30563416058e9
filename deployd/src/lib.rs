//! The deploy daemon (`vigie deployd`, started and supervised by the
//! launcher): runs the deploys operators start (`vigie deploy`) in the
//! tower, so a deploy outlives the operator's terminal. `daemon` is the
//! loop (the referee's rollouts not ended, polled like the provisioner
//! polls its servers: a restart resumes them all), `driver` carries out
//! one rollout's outputs — the deployer's pure state machine
//! (`vigie_deployer::rollout`) decides; the driver records its state in
//! the referee before it acts, then submits, follows and records what
//! the machine asks — `verbs` builds the machine of a verb on a deployed
//! environment (`undeploy`, `rollback`...: the same driver carries it out)
//! and `error` is the crate's error.

pub mod daemon;
pub mod driver;
pub mod error;
pub mod verbs;

pub use daemon::{run, DeploydConfig};
pub use error::DeploydError;
