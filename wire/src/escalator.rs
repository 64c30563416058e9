//! Escalator's request/reply messages.
//!
//! A client sends [`Request`]s on a DEALER socket and may keep many in flight;
//! each [`Reply`] carries the id of the request it answers. Databases are named
//! by a [`DbRef`] (name plus key prefix) in every request instead of a
//! server-assigned handle, so a client's handles stay valid across a server
//! restart.

use serde::{Deserialize, Serialize};

pub type Bytes = Vec<u8>;

/// A database, or the prefix sub-database of one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DbRef {
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub prefix: Bytes,
}

impl DbRef {
    pub fn root(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            prefix: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub body: RequestBody,
}

/// Only the id of a request: decoded first so that a request whose body is
/// unknown or malformed still gets an error reply with its id.
#[derive(Debug, Deserialize)]
pub struct RequestHead {
    pub id: u64,
    #[allow(dead_code)]
    body: serde::de::IgnoredAny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestBody {
    Ping,
    /// Creates the database if missing (`exist_ok`), or fails if it exists.
    Create {
        name: String,
        exist_ok: bool,
    },
    /// Checks that a database exists (plyvel's `connect`).
    Open {
        db: DbRef,
    },
    Get {
        db: DbRef,
        #[serde(with = "serde_bytes")]
        key: Bytes,
    },
    Exists {
        db: DbRef,
        #[serde(with = "serde_bytes")]
        key: Bytes,
    },
    Put {
        db: DbRef,
        #[serde(with = "serde_bytes")]
        key: Bytes,
        #[serde(with = "serde_bytes")]
        value: Bytes,
        durable: bool,
    },
    Delete {
        db: DbRef,
        #[serde(with = "serde_bytes")]
        key: Bytes,
        durable: bool,
    },
    Range {
        db: DbRef,
        spec: RangeSpec,
    },
    /// All operations are applied or none is.
    Batch {
        db: DbRef,
        ops: Vec<BatchOp>,
        durable: bool,
    },
    Stats,
}

impl RequestBody {
    /// Whether the reply must wait until the write is on stable storage.
    pub fn is_durable_write(&self) -> bool {
        matches!(
            self,
            RequestBody::Put { durable: true, .. }
                | RequestBody::Delete { durable: true, .. }
                | RequestBody::Batch { durable: true, .. }
        )
    }
}

/// A key range, plyvel style: `start` inclusive, `stop` exclusive, `prefix`
/// restricting keys further. Keys are relative to the sub-database prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeSpec {
    #[serde(with = "serde_bytes")]
    pub start: Option<Bytes>,
    #[serde(with = "serde_bytes")]
    pub stop: Option<Bytes>,
    #[serde(with = "serde_bytes")]
    pub prefix: Option<Bytes>,
    pub reverse: bool,
    pub limit: Option<u32>,
    pub keys_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum BatchOp {
    Put {
        #[serde(with = "serde_bytes")]
        key: Bytes,
        #[serde(with = "serde_bytes")]
        value: Bytes,
    },
    Delete {
        #[serde(with = "serde_bytes")]
        key: Bytes,
    },
}

impl BatchOp {
    pub fn key(&self) -> &[u8] {
        match self {
            BatchOp::Put { key, .. } | BatchOp::Delete { key } => key,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub id: u64,
    pub body: Result<Response, Fault>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(with = "serde_bytes")]
    pub key: Bytes,
    #[serde(with = "serde_bytes")]
    pub value: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    Pong,
    Done,
    Value(#[serde(with = "serde_bytes")] Option<Bytes>),
    Exists(bool),
    /// One page of a range. When `resume` is set the range goes on: ask again
    /// with it as the new bound (the start going forward, the stop in reverse).
    Page {
        entries: Vec<Entry>,
        #[serde(with = "serde_bytes")]
        resume: Option<Bytes>,
    },
    Stats(Stats),
}

/// Server counters, used by tests and the benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub requests: u64,
    pub durable_writes: u64,
    pub syncs: u64,
    pub errors: u64,
    pub databases: u32,
    /// How long each fdatasync turn took, in microseconds.
    #[serde(default)]
    pub commit_us: Histogram,
    /// How many durable writes each fdatasync covered (the group size).
    #[serde(default)]
    pub commit_writes: Histogram,
}

/// Counts per bucket, cheap to keep in memory and to send: `counts[i]`
/// holds the observations `<= bounds[i]` not counted in a lower bucket,
/// and the last count those above every bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Histogram {
    pub bounds: Vec<u64>,
    pub counts: Vec<u64>,
    pub sum: u64,
    pub count: u64,
}

impl Histogram {
    pub fn with_bounds(bounds: &[u64]) -> Self {
        Self {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0,
            count: 0,
        }
    }

    pub fn observe(&mut self, value: u64) {
        let i = self.bounds.partition_point(|b| *b < value);
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum = self.sum.saturating_add(value);
        self.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::Histogram;

    #[test]
    fn an_observation_lands_in_the_first_bucket_it_fits() {
        let mut h = Histogram::with_bounds(&[1, 10]);
        for v in [0, 1, 2, 10, 11] {
            h.observe(v);
        }
        assert_eq!(h.counts, vec![2, 2, 1]);
        assert_eq!((h.sum, h.count), (24, 5));
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{kind:?}: {message}")]
pub struct Fault {
    pub kind: FaultKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FaultKind {
    /// The frame could not be decoded (garbage, truncated, wrong version).
    Malformed,
    /// The envelope was fine but the command is unknown or its fields wrong.
    BadRequest,
    UnknownDatabase,
    DatabaseExists,
    TooLarge,
    InvalidName,
    /// The storage engine failed; the write was not applied.
    Storage,
}

impl Fault {
    pub fn new(kind: FaultKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}
