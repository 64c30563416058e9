//! A registry the referee holds in memory and stores record by record:
//! `put` and `remove` change the map and add the write to the turn in one
//! call, so memory and the store cannot differ. Reads go through the map
//! (`Deref`); there is no other way to write.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;
use std::marker::PhantomData;
use std::ops::Deref;

use crate::core::codec::encode;
use crate::core::turn::Turn;

/// The map a table keeps its rows in: a `HashMap` by default, a
/// `BTreeMap` where the rows are listed in order or by range.
pub trait Rows<K, V> {
    fn insert_row(&mut self, k: K, v: V) -> Option<V>;
    fn remove_row(&mut self, k: &K) -> Option<V>;
}

impl<K: Hash + Eq, V> Rows<K, V> for HashMap<K, V> {
    fn insert_row(&mut self, k: K, v: V) -> Option<V> {
        self.insert(k, v)
    }
    fn remove_row(&mut self, k: &K) -> Option<V> {
        self.remove(k)
    }
}

impl<K: Ord, V> Rows<K, V> for BTreeMap<K, V> {
    fn insert_row(&mut self, k: K, v: V) -> Option<V> {
        self.insert(k, v)
    }
    fn remove_row(&mut self, k: &K) -> Option<V> {
        self.remove(k)
    }
}

#[derive(Debug)]
pub struct Table<K, V, M = HashMap<K, V>> {
    rows: M,
    /// The store key of a row.
    key: fn(&K) -> Vec<u8>,
    row: PhantomData<fn() -> V>,
}

impl<K, V: serde::Serialize, M: Rows<K, V>> Table<K, V, M> {
    /// The rows as loaded from the store.
    pub fn loaded(rows: M, key: fn(&K) -> Vec<u8>) -> Self {
        Self {
            rows,
            key,
            row: PhantomData,
        }
    }

    pub fn put(&mut self, turn: &mut Turn, k: K, v: V) {
        turn.put((self.key)(&k), encode(&v));
        self.rows.insert_row(k, v);
    }

    pub fn remove(&mut self, turn: &mut Turn, k: &K) -> Option<V> {
        turn.delete((self.key)(k));
        self.rows.remove_row(k)
    }
}

impl<K, V, M> Deref for Table<K, V, M> {
    type Target = M;

    fn deref(&self) -> &Self::Target {
        &self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_changes_memory_and_the_turn_together() {
        let mut t: Table<String, u32> =
            Table::loaded(HashMap::new(), |k| format!("t/{k}").into_bytes());
        let mut turn = Turn::started();
        t.put(&mut turn, "a".into(), 1);
        assert_eq!(t.get("a"), Some(&1));
        assert_eq!(turn.writes, vec![(b"t/a".to_vec(), Some(encode(&1u32)))]);
        assert_eq!(t.remove(&mut turn, &"a".to_owned()), Some(1));
        assert!(t.is_empty());
        assert_eq!(turn.writes[1], (b"t/a".to_vec(), None));
    }

    #[test]
    fn an_ordered_table_lists_its_rows_by_key_and_writes_each() {
        let mut t: Table<String, u32, BTreeMap<String, u32>> =
            Table::loaded(BTreeMap::new(), |k| format!("t/{k}").into_bytes());
        let mut turn = Turn::started();
        for (k, v) in [("b", 2), ("c", 3), ("a", 1)] {
            t.put(&mut turn, k.into(), v);
        }
        assert_eq!(t.values().copied().collect::<Vec<_>>(), vec![1, 2, 3]);
        assert_eq!(turn.writes.len(), 3);
        assert_eq!(t.remove(&mut turn, &"z".to_owned()), None);
        assert_eq!(
            turn.writes[3],
            (b"t/z".to_vec(), None),
            "a delete all the same"
        );
    }
}
