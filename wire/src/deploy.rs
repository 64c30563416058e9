//! The deployer's calls to the referee: the referee is the single writer
//! of tower state, so the deployer's inventory (per tenant and
//! environment: instance numbers, placements, history) is read and
//! written through it, audited like everything else. The record itself is
//! the deployer's (`vigie_deployer::EnvRecord`, JSON): the wire carries it
//! as bytes and the referee checks it before storing.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeployCall {
    /// Every environment of the caller's tenant the deployer knows.
    List,
    /// Stores an environment's record once its deploy settled, or while
    /// a maintenance deploy runs (an in-progress entry only its own run
    /// rewrites). `expected` is the number of deploys in its history when
    /// the deploy was planned: a record that moved since (another deploy
    /// of the same environment) is a conflict, never overwritten.
    Record {
        app: String,
        environment: String,
        expected: u32,
        #[serde(with = "serde_bytes")]
        record: Vec<u8>,
    },
}

impl DeployCall {
    pub fn mutates(&self) -> bool {
        matches!(self, DeployCall::Record { .. })
    }
}

/// One environment's record as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    pub app: String,
    pub environment: String,
    #[serde(with = "serde_bytes")]
    pub record: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeployAnswer {
    Deployments(Vec<Deployment>),
    Recorded,
}
