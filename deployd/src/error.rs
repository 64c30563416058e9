//! The deploy daemon's one error type.

#[derive(Debug, thiserror::Error)]
pub enum DeploydError {
    #[error("the referee: {0}")]
    Referee(#[from] vigie_client::ClientError),
    #[error("unexpected answer from the referee: {0}")]
    Unexpected(String),
    #[error("the rollout's recorded state is unreadable: {0}")]
    State(String),
}

impl DeploydError {
    /// What trying again cannot change: a refusal of the tower, or what
    /// the rollout holds (its environment's hosts, its state).
    pub fn permanent(&self) -> bool {
        self.refusal().is_some() || matches!(self, DeploydError::State(_))
    }

    /// A refusal of the tower that trying again cannot change (as
    /// opposed to a referee restarting or slow).
    pub fn refusal(&self) -> Option<&vigie_wire::tower::ApiFault> {
        use vigie_wire::tower::ApiFaultKind as K;
        match self {
            DeploydError::Referee(vigie_client::ClientError::Refused(f))
                if !matches!(f.kind, K::Unavailable | K::Storage) =>
            {
                Some(f)
            }
            _ => None,
        }
    }
}
