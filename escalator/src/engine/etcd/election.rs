//! One active tower among several, elected in etcd with a lease and a
//! transaction: the election key is created only if it does not exist,
//! attached to the candidate's lease. The holder keeps its lease alive;
//! when it stops (its machine died, it lost etcd), the lease expires, etcd
//! deletes the key, and the next candidate's transaction takes it. The
//! winner's writes are fenced by the same lease ([`Election::fence`]).

use std::time::Duration;

use serde_json::{json, Value};

use super::gateway::{b64, bytes_of, int_of, Gateway};
use super::Fence;
use crate::engine::EngineError;

/// Who holds the election key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leader {
    /// The lease asked with holds it.
    Me,
    /// Another candidate, by the name it wrote.
    Other { name: String, lease: i64 },
}

#[derive(Debug)]
pub struct Election {
    gw: Gateway,
    key: Vec<u8>,
    name: String,
}

impl Election {
    /// `name` (this tower's) is what other candidates see as the leader.
    pub fn new(
        endpoints: &[String],
        key: &[u8],
        name: &str,
        timeout: Duration,
    ) -> Result<Self, EngineError> {
        Ok(Self {
            gw: Gateway::new(endpoints, timeout)?,
            key: key.to_vec(),
            name: name.to_owned(),
        })
    }

    /// A new lease of `ttl` (etcd may raise it to its minimum).
    pub fn grant(&mut self, ttl: Duration) -> Result<i64, EngineError> {
        let v = self
            .gw
            .call("lease/grant", &json!({"TTL": ttl.as_secs().max(1)}))?;
        match int_of(&v, "ID") {
            0 => Err(EngineError::Etcd(format!("lease grant answered {v}"))),
            id => Ok(id),
        }
    }

    /// Takes the key for `lease` if nobody holds it; says who does.
    pub fn campaign(&mut self, lease: i64) -> Result<Leader, EngineError> {
        let key = b64(&self.key);
        let body = json!({
            "compare": [{"target": "CREATE", "key": key, "result": "EQUAL", "create_revision": "0"}],
            "success": [{"request_put": {"key": key, "value": b64(self.name.as_bytes()),
                                          "lease": lease.to_string()}}],
            "failure": [{"request_range": {"key": key}}],
        });
        let v = self.gw.call("kv/txn", &body)?;
        if v.get("succeeded").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(Leader::Me);
        }
        let kv = v
            .pointer("/responses/0/response_range/kvs/0")
            .cloned()
            .unwrap_or(Value::Null);
        let holder = int_of(&kv, "lease");
        if holder == lease {
            return Ok(Leader::Me);
        }
        Ok(Leader::Other {
            name: String::from_utf8_lossy(&bytes_of(&kv, "value")?).into_owned(),
            lease: holder,
        })
    }

    /// Renews `lease`: false when it has expired (this tower is deposed).
    pub fn keep_alive(&mut self, lease: i64) -> Result<bool, EngineError> {
        let v = self
            .gw
            .call("lease/keepalive", &json!({"ID": lease.to_string()}))?;
        Ok(int_of(v.get("result").unwrap_or(&Value::Null), "TTL") > 0)
    }

    /// Gives `lease` up at once (a clean stop): the key goes with it.
    pub fn resign(&mut self, lease: i64) -> Result<(), EngineError> {
        self.gw
            .call("lease/revoke", &json!({"ID": lease.to_string()}))
            .map(drop)
    }

    /// The fence of a leader holding the key with `lease`.
    pub fn fence(&self, lease: i64) -> Fence {
        Fence {
            key: self.key.clone(),
            lease,
        }
    }
}
