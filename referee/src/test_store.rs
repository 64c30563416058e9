//! For the referee's own tests: a real Escalator (in-process, durable) in
//! a temp dir, the tower's database on it, and towers loaded from it.

use std::time::Duration;

use vigie_escalator::Database;
use vigie_escalator::LocalServer;

use crate::tower::{Timing, Tower};

pub const TIMING: Timing = Timing {
    host_timeout: Duration::from_secs(3),
    resend_after: Duration::from_secs(1),
};

pub struct TestStore {
    /// Kept for the store's life: the data dir and its server.
    _dir: tempfile::TempDir,
    _server: LocalServer,
    pub db: Database,
}

pub fn store() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let server = LocalServer::start(dir.path(), true).unwrap();
    let db = vigie_escalator::Client::connect(&server.endpoint)
        .unwrap()
        .create(crate::model::DB)
        .unwrap();
    TestStore {
        _dir: dir,
        _server: server,
        db,
    }
}

impl TestStore {
    /// A tower as a start rebuilds it from what is stored.
    pub fn tower(&self) -> Tower {
        Tower::load(&self.db, TIMING).unwrap()
    }

    /// Ends `turn` on `tower` and stores its writes in one batch, as the
    /// referee's loop does after every turn.
    pub fn commit(&self, tower: &mut Tower, turn: &mut crate::turn::Turn) {
        tower.finish_turn(turn);
        let mut b = self.db.batch();
        for (k, v) in turn.writes.drain(..) {
            match v {
                Some(v) => b.put(&k, &v),
                None => b.delete(&k),
            };
        }
        b.write().unwrap();
    }
}
