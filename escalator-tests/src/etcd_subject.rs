//! The etcd engine as a crash-point [`Subject`]: the N-th request's answer
//! lost (`Fail`: the tower died before reading it), the request torn
//! (`Short`: the tower died mid-send; etcd never sees half a transaction),
//! or torn and then no more I/O (`Kill`). Every run then ends with etcd
//! itself killed (SIGKILL) and restarted before the reopen, so every
//! acknowledged write must have been on etcd's disk. Runs share one server,
//! each under a prefix of its own.

use std::cell::RefCell;
use std::rc::Rc;

use vigie_escalator::engine::faults::{FaultPoint, Faults};
use vigie_escalator::engine::{EtcdEngine, Staging};

use crate::crashpoint::Subject;
use crate::etcd_server::EtcdServer;

#[derive(Debug)]
pub struct EtcdSubject {
    server: Rc<RefCell<EtcdServer>>,
    prefix: Vec<u8>,
    faults: Rc<Faults>,
}

impl EtcdSubject {
    /// A database under `run/<name>/` on `server`.
    pub fn new(server: Rc<RefCell<EtcdServer>>, name: &str) -> Self {
        Self {
            server,
            prefix: format!("run/{name}/").into_bytes(),
            faults: Faults::counting(),
        }
    }
}

impl Subject for EtcdSubject {
    type Engine = EtcdEngine;

    fn open(&mut self, point: Option<FaultPoint>) -> Result<EtcdEngine, String> {
        self.faults = point.map_or_else(Faults::counting, Faults::at);
        let opts = self.server.borrow().options(&self.prefix);
        EtcdEngine::open_with_faults(&opts, Some(self.faults.clone())).map_err(|e| e.to_string())
    }

    fn dead(&self) -> bool {
        self.faults.dead()
    }

    fn ops(&self) -> u64 {
        self.faults.ops()
    }

    fn epoch(engine: &EtcdEngine) -> u64 {
        // Moves at a failed transaction only: a write etcd answered Ok to
        // is on a quorum's disk, never lost.
        Staging::generation(engine)
    }

    fn short_is_retried(&self) -> bool {
        false
    }

    fn recover(&mut self) -> Result<usize, String> {
        self.server.borrow_mut().restart()?;
        Ok(0)
    }

    fn reopen(&mut self) -> Result<EtcdEngine, String> {
        let opts = self.server.borrow().options(&self.prefix);
        EtcdEngine::open(&opts).map_err(|e| e.to_string())
    }
}
