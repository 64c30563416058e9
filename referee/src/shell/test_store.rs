//! For the referee's own tests: the tower's records in memory (a
//! `MemStore`, with Escalator's batch limits) and towers loaded from them,
//! as a start rebuilds one. No Escalator is started.

use std::time::Duration;

use crate::core::state::{Core, Timing};
use crate::shell::mem_store::MemStore;
use crate::shell::store::Store;

pub const TIMING: Timing = Timing {
    host_timeout: Duration::from_secs(3),
    resend_after: Duration::from_secs(1),
};

impl crate::core::turn::Turn {
    /// A turn stamped with the wall clock now, as the shell stamps each
    /// input (tests).
    pub fn started() -> Self {
        Self::at(crate::shell::clock::now_ms())
    }
}

pub struct TestStore {
    pub db: MemStore,
}

pub fn store() -> TestStore {
    TestStore {
        db: MemStore::default(),
    }
}

impl TestStore {
    /// A tower as a start rebuilds it from what is stored.
    pub fn tower(&self) -> Core {
        let tower = crate::shell::load::tower(&self.db, TIMING).unwrap();
        if let Err(broken) = tower.check() {
            panic!("as loaded: {broken}");
        }
        tower
    }

    /// Every audit record, in sequence order, as stored.
    pub fn audit(
        &self,
    ) -> Result<Vec<vigie_wire::tower::AuditRecord>, vigie_wire::tower::ApiFault> {
        Ok(self
            .db
            .scan(crate::core::audit::PREFIX, None)
            .map(|e| {
                let (key, value) = e.unwrap();
                crate::core::codec::decode(&key, &value).unwrap()
            })
            .collect())
    }

    /// Ends `turn` on `tower` and stores its writes in one batch, as the
    /// referee's loop does after every turn.
    pub fn commit(&self, tower: &mut Core, turn: &mut crate::core::turn::Turn) {
        tower.finish_turn(turn);
        if let Err(broken) = tower.check() {
            panic!("after a turn: {broken}");
        }
        self.db.write(&mut turn.writes).unwrap();
    }
}
