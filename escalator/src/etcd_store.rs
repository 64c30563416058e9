//! Databases kept in etcd instead of the data dir (an HA tower's): under
//! the store's prefix, `dbs/<name>` marks a database and `db/<name>/` holds
//! its keys. Every engine the store opens carries the store's fence, the
//! database markers included.

use std::time::Duration;

use crate::engine::{
    Bounds, Engine, EngineError, EtcdEngine, EtcdOptions, Fence, ScanLimit, TxnLimits,
};
use vigie_wire::escalator::BatchOp;

#[derive(Debug, Clone)]
pub struct EtcdStore {
    /// Client URLs of the cluster's members.
    pub endpoints: Vec<String>,
    /// The tower group's prefix: every key of every database is under it.
    pub prefix: Vec<u8>,
    /// The cluster's `--max-txn-ops` and `--max-request-bytes`.
    pub limits: TxnLimits,
    /// The active tower's lease on the election key; `None`: unfenced.
    pub fence: Option<Fence>,
    pub timeout: Duration,
}

impl EtcdStore {
    fn engine(&self, sub: &str) -> Result<EtcdEngine, EngineError> {
        let mut e = EtcdEngine::open(&EtcdOptions {
            endpoints: self.endpoints.clone(),
            prefix: [self.prefix.as_slice(), sub.as_bytes()].concat(),
            timeout: self.timeout,
            limits: self.limits,
        })?;
        e.set_fence(self.fence.clone());
        Ok(e)
    }

    /// The engine of database `name`.
    pub fn open(&self, name: &str) -> Result<EtcdEngine, EngineError> {
        self.engine(&format!("db/{name}/"))
    }

    /// The names of the databases created so far.
    pub fn names(&self) -> Result<Vec<String>, EngineError> {
        let all = ScanLimit {
            entries: usize::MAX,
            bytes: usize::MAX,
        };
        let rows = self
            .engine("dbs/")?
            .scan(&Bounds::all(), false, all, true)?;
        Ok(rows
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    /// Marks database `name` as created (fenced, like every write).
    pub fn create(&self, name: &str) -> Result<EtcdEngine, EngineError> {
        self.engine("dbs/")?.write(&[BatchOp::Put {
            key: name.as_bytes().to_vec(),
            value: Vec::new(),
        }])?;
        self.open(name)
    }
}
