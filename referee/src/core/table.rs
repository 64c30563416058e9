//! A registry the referee holds in memory and stores record by record:
//! `put` and `remove` change the map and add the write to the turn in one
//! call, so memory and the store cannot differ. Reads go through the map
//! (`Deref`); there is no other way to write.

use std::collections::HashMap;
use std::hash::Hash;
use std::ops::Deref;

use crate::core::codec::encode;
use crate::core::turn::Turn;

#[derive(Debug)]
pub struct Table<K, V> {
    rows: HashMap<K, V>,
    /// The store key of a row.
    key: fn(&K) -> Vec<u8>,
}

impl<K: Hash + Eq, V: serde::Serialize> Table<K, V> {
    /// The rows as loaded from the store.
    pub fn loaded(rows: HashMap<K, V>, key: fn(&K) -> Vec<u8>) -> Self {
        Self { rows, key }
    }

    pub fn put(&mut self, turn: &mut Turn, k: K, v: V) {
        turn.put((self.key)(&k), encode(&v));
        self.rows.insert(k, v);
    }

    pub fn remove(&mut self, turn: &mut Turn, k: &K) -> Option<V> {
        turn.delete((self.key)(k));
        self.rows.remove(k)
    }
}

impl<K, V> Deref for Table<K, V> {
    type Target = HashMap<K, V>;

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
        let mut turn = Turn::default();
        t.put(&mut turn, "a".into(), 1);
        assert_eq!(t.get("a"), Some(&1));
        assert_eq!(turn.writes, vec![(b"t/a".to_vec(), Some(encode(&1u32)))]);
        assert_eq!(t.remove(&mut turn, &"a".to_owned()), Some(1));
        assert!(t.is_empty());
        assert_eq!(turn.writes[1], (b"t/a".to_vec(), None));
    }
}
