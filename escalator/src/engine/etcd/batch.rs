//! A write batch as one etcd transaction (no I/O): the ops folded so each
//! key appears once (etcd refuses a transaction that names a key twice; the
//! later op wins, as in a LevelDB batch), then checked against the cluster's
//! limits — a batch too big is refused whole, never split, since a split
//! batch would not be atomic.

use std::collections::BTreeMap;

use vigie_wire::escalator::BatchOp;

/// What one transaction may hold: etcd's `--max-txn-ops` and
/// `--max-request-bytes` (its defaults: 128 and 1.5 MiB).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxnLimits {
    pub ops: usize,
    pub bytes: usize,
}

impl Default for TxnLimits {
    fn default() -> Self {
        Self {
            ops: 128,
            bytes: 1536 << 10,
        }
    }
}

/// Room kept for the request's framing and each op's fields.
const FRAMING: usize = 4 << 10;
const PER_OP: usize = 32;

/// A batch too big for one transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a batch of {ops} ops and {bytes} bytes is over etcd's limit of {} ops and {} bytes per \
     transaction (--max-txn-ops, --max-request-bytes); it is refused whole, not split",
    limits.ops, limits.bytes
)]
pub struct TooLarge {
    pub ops: usize,
    pub bytes: usize,
    pub limits: TxnLimits,
}

/// The last op of each key of `ops`, keys prefixed: `Some` value a put,
/// `None` a delete.
pub fn fold(prefix: &[u8], ops: &[BatchOp]) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    for op in ops {
        let (key, value) = match op {
            BatchOp::Put { key, value } => (key, Some(value.clone())),
            BatchOp::Delete { key } => (key, None),
        };
        out.insert([prefix, key].concat(), value);
    }
    out
}

/// Refuses a folded batch over `limits`.
pub fn check(
    folded: &BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    limits: TxnLimits,
) -> Result<(), TooLarge> {
    let bytes = folded
        .iter()
        .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + PER_OP)
        .sum::<usize>()
        + FRAMING;
    if folded.len() > limits.ops || bytes > limits.bytes {
        return Err(TooLarge {
            ops: folded.len(),
            bytes,
            limits,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(k: &[u8], v: &[u8]) -> BatchOp {
        BatchOp::Put {
            key: k.to_vec(),
            value: v.to_vec(),
        }
    }

    #[test]
    fn later_ops_win_and_keys_get_the_prefix() {
        let ops = [
            put(b"x", b"1"),
            BatchOp::Delete { key: b"x".to_vec() },
            put(b"y", b"2"),
            put(b"y", b"3"),
        ];
        let f = fold(b"p/", &ops);
        assert_eq!(f.len(), 2);
        assert_eq!(f[&b"p/x".to_vec()], None);
        assert_eq!(f[&b"p/y".to_vec()], Some(b"3".to_vec()));
    }

    #[test]
    fn a_batch_over_the_limits_is_refused_whole() {
        let limits = TxnLimits {
            ops: 2,
            bytes: 1 << 20,
        };
        let ops: Vec<_> = (0..3u8).map(|i| put(&[i], b"v")).collect();
        let err = check(&fold(b"p", &ops), limits).unwrap_err();
        assert_eq!(err.ops, 3);
        let big = [put(b"k", &vec![0; 1 << 20])];
        assert!(check(&fold(b"p", &big), limits).is_err(), "bytes");
        assert!(check(&fold(b"p", &ops[..2]), limits).is_ok());
    }
}
