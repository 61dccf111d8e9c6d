//! The storage the kv logic runs on: [`KvRead`] for queries, [`KvAccess`] for applying commands,
//! and both over an in-memory `BTreeMap` for native callers and tests.
//!
//! The split lets a read-only backend (the plugin's query snapshot) implement only [`KvRead`], so
//! the type system rules out writes where the host would refuse them.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::ops::Bound;

/// Read access to a byte-ordered keyspace.
pub trait KvRead {
    /// Reads one key.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;

    /// Returns at most `limit` pairs with keys in `[start, end)`, in key order (`end = None`: to
    /// the end of the keyspace). A range whose `end` is not after `start` is empty.
    fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)>;

    /// Returns at most `limit` keys in `[start, end)`, in key order, like [`Self::scan`] but
    /// without the values. Storage that can list keys without reading values (the plugin's
    /// keyspace can) should: range deletes and key listings use it, so a range of large values
    /// costs only its keys' memory.
    fn scan_keys(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Vec<Vec<u8>> {
        let pairs = self.scan(start, end, limit);
        pairs.into_iter().map(|(key, _)| key).collect()
    }
}

/// Read and write access to a byte-ordered keyspace.
pub trait KvAccess: KvRead {
    /// Writes one key, or says why the storage refused it (a key or value over the cluster's
    /// limits); nothing is written then.
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String>;

    /// Deletes one key; returns whether it existed.
    fn delete(&mut self, key: &[u8]) -> bool;
}

impl KvRead for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        BTreeMap::get(self, key).cloned()
    }

    fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        // `BTreeMap::range` panics on an inverted range.
        if end.is_some_and(|end| end <= start) {
            return Vec::new();
        }
        let end = end.map_or(Bound::Unbounded, Bound::Excluded);
        self.range::<[u8], _>((Bound::Included(start), end))
            .take(limit)
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }
}

impl KvAccess for BTreeMap<Vec<u8>, Vec<u8>> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), String> {
        self.insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&mut self, key: &[u8]) -> bool {
        self.remove(key).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverted_and_empty_ranges_are_empty_rather_than_a_panic() {
        let mut map = BTreeMap::new();
        map.put(b"b", b"1").unwrap();
        assert!(map.scan(b"c", Some(b"a"), 10).is_empty());
        assert!(map.scan(b"b", Some(b"b"), 10).is_empty());
        assert_eq!(map.scan(b"b", Some(b"b\0"), 10).len(), 1);
    }
}
