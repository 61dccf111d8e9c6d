//! The apply transaction: a batch's writes held in memory over the committed state, in two layers
//! so that one entry's writes can be dropped (when it traps) without losing the entries before it.
//! Each entry's net changes are recorded as it completes, tagged with its index, for `watch`.
//! The writes themselves are a [`WriteSet`] per layer.

use std::collections::BTreeMap;

use super::{Change, EntryChanges, Pairs, StateRead, StoreError, WriteSet};

/// What a scan returns per key: a pair, or the key alone.
trait ScanItem {
    fn key(&self) -> &[u8];
    /// The item for a buffered put of `key` = `value`.
    fn buffered(key: &[u8], value: &[u8]) -> Self;
}

impl ScanItem for (Vec<u8>, Vec<u8>) {
    fn key(&self) -> &[u8] {
        &self.0
    }
    fn buffered(key: &[u8], value: &[u8]) -> Self {
        (key.to_vec(), value.to_vec())
    }
}

impl ScanItem for Vec<u8> {
    fn key(&self) -> &[u8] {
        self
    }
    fn buffered(key: &[u8], _value: &[u8]) -> Self {
        key.to_vec()
    }
}

/// The writes of the current apply batch: `done` holds the entries that completed, `current` the
/// entry in progress. Reads see `current`, then `done`, then the committed state.
#[derive(Debug, Default)]
pub struct Txn {
    done: WriteSet,
    current: WriteSet,
    /// For each key the entry in progress deleted: whether it existed before the entry. Deleting
    /// a key that did not exist changes nothing, so it is not recorded.
    existed_before: BTreeMap<Vec<u8>, bool>,
    /// The changes of the completed entries, in log order.
    changes: Vec<EntryChanges>,
}

impl Txn {
    /// Reads one key through the transaction.
    pub fn get(&self, base: &dyn StateRead, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(state) = self.current.lookup(key).or_else(|| self.done.lookup(key)) {
            return Ok(state.map(<[u8]>::to_vec));
        }
        base.get(key)
    }

    /// Writes one key.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.current.put(key, value);
    }

    /// Deletes one key; returns whether it existed.
    pub fn delete(&mut self, base: &dyn StateRead, key: Vec<u8>) -> Result<bool, StoreError> {
        let existed = self.get(base, &key)?.is_some();
        if !self.existed_before.contains_key(&key) {
            let before = match self.current.lookup(&key) {
                // Untouched by this entry: what it sees is what was there before it.
                None => existed,
                // Put earlier in this entry: look beneath it.
                Some(_) => match self.done.lookup(&key) {
                    Some(state) => state.is_some(),
                    None => base.get(&key)?.is_some(),
                },
            };
            self.existed_before.insert(key.clone(), before);
        }
        self.current.delete(key);
        Ok(existed)
    }

    /// Up to `limit` pairs in `[start, end)`, merging the transaction over the committed state.
    pub fn scan(
        &self,
        base: &dyn StateRead,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Pairs, StoreError> {
        self.merged(start, end, limit, |wanted| base.scan(start, end, wanted))
    }

    /// Up to `limit` keys in `[start, end)`, merging the transaction over the committed state,
    /// without reading any committed value.
    pub fn scan_keys(
        &self,
        base: &dyn StateRead,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        self.merged(start, end, limit, |wanted| {
            base.scan_keys(start, end, wanted)
        })
    }

    /// Up to `limit` items in `[start, end)`: the buffered writes merged over what `committed`
    /// reads (given how many items to read) from the committed state.
    fn merged<T: ScanItem>(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
        committed: impl FnOnce(usize) -> Result<Vec<T>, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        // An inverted range is empty (and `BTreeMap::range` would panic on it).
        if limit == 0 || end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        // The buffered writes in range, newest layer winning.
        let mut overlay: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for layer in [&self.done, &self.current] {
            for (k, v) in layer.range(start, end) {
                overlay.insert(&k[..], v.as_deref());
            }
        }
        if overlay.is_empty() {
            return committed(limit);
        }
        // Each buffered delete can hide one committed item, so ask for that many more.
        let deletes = overlay.values().filter(|v| v.is_none()).count();
        let committed = committed(limit.saturating_add(deletes))?;
        let mut merged = Vec::with_capacity(limit.min(committed.len() + overlay.len()));
        let mut committed = committed.into_iter().peekable();
        let mut overlay = overlay.into_iter().peekable();
        while merged.len() < limit {
            let take_overlay = match (committed.peek(), overlay.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some(item), Some((ok, _))) => *ok <= item.key(),
            };
            if take_overlay {
                let Some((key, value)) = overlay.next() else {
                    break;
                };
                if committed.peek().is_some_and(|item| item.key() == key) {
                    committed.next();
                }
                if let Some(value) = value {
                    merged.push(T::buffered(key, value));
                }
            } else if let Some(item) = committed.next() {
                merged.push(item);
            }
        }
        Ok(merged)
    }

    /// Number of keys written by the completed entries.
    pub fn pending_len(&self) -> usize {
        self.done.len()
    }

    /// The entry in progress, at log index `index`, completed: keep its writes and record what
    /// they changed.
    pub fn keep_current(&mut self, index: u64) {
        let existed_before = std::mem::take(&mut self.existed_before);
        let changes: Vec<Change> = self
            .current
            .shared()
            .filter(|(key, value)| value.is_some() || existed_before.get(&key[..]) != Some(&false))
            .map(|(key, value)| Change {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        if !changes.is_empty() {
            self.changes.push(EntryChanges { index, changes });
        }
        self.done.absorb(&mut self.current);
    }

    /// The entry in progress trapped: drop its writes.
    pub fn discard_current(&mut self) {
        self.current = WriteSet::default();
        self.existed_before.clear();
    }

    /// Drops every write of the batch.
    pub fn discard_all(&mut self) {
        self.discard_current();
        self.done = WriteSet::default();
        self.changes.clear();
    }

    /// Takes the completed writes and their changes for commit, leaving the transaction empty.
    pub fn take_done(&mut self) -> (WriteSet, Vec<EntryChanges>) {
        self.discard_current();
        (
            std::mem::take(&mut self.done),
            std::mem::take(&mut self.changes),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use proptest::prelude::*;
    use std::ops::Bound;

    /// A committed state backed by a map, for testing the merge.
    struct MapState(BTreeMap<Vec<u8>, Vec<u8>>);

    impl StateRead for MapState {
        fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(self.0.get(key).cloned())
        }
        fn scan(
            &self,
            start: &[u8],
            end: Option<&[u8]>,
            limit: usize,
        ) -> Result<Pairs, StoreError> {
            if end.is_some_and(|end| end <= start) {
                return Ok(Vec::new());
            }
            let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
            Ok(self
                .0
                .range::<[u8], _>((Bound::Included(start), upper))
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect())
        }
        fn scan_keys(
            &self,
            start: &[u8],
            end: Option<&[u8]>,
            limit: usize,
        ) -> Result<Vec<Vec<u8>>, StoreError> {
            let pairs = self.scan(start, end, limit)?;
            Ok(pairs.into_iter().map(|(key, _)| key).collect())
        }
    }

    /// Bug: a guest cursor with `end < start` reached `BTreeMap::range`, which panics, taking the
    /// host down. Inverted ranges are empty.
    #[test]
    fn an_inverted_range_is_empty_not_a_panic() {
        let base = MapState(BTreeMap::from([(b"a".to_vec(), b"0".to_vec())]));
        let mut txn = Txn::default();
        txn.put(b"b".to_vec(), b"1".to_vec());
        assert_eq!(txn.scan(&base, b"c", Some(b"a"), 10).unwrap(), Vec::new());
    }

    #[test]
    fn reads_see_current_then_done_then_committed() {
        let base = MapState(BTreeMap::from([(b"a".to_vec(), b"0".to_vec())]));
        let mut txn = Txn::default();
        assert_eq!(txn.get(&base, b"a").unwrap(), Some(b"0".to_vec()));
        txn.put(b"a".to_vec(), b"1".to_vec());
        txn.keep_current(1);
        txn.put(b"a".to_vec(), b"2".to_vec());
        assert_eq!(txn.get(&base, b"a").unwrap(), Some(b"2".to_vec()));
        txn.discard_current();
        assert_eq!(txn.get(&base, b"a").unwrap(), Some(b"1".to_vec()));
        assert!(txn.delete(&base, b"a".to_vec()).unwrap());
        assert_eq!(txn.get(&base, b"a").unwrap(), None);
        assert!(!txn.delete(&base, b"a".to_vec()).unwrap());
    }

    fn change(key: &[u8], value: Option<&[u8]>) -> Change {
        Change {
            key: Bytes::copy_from_slice(key),
            value: value.map(Bytes::copy_from_slice),
        }
    }

    /// Each completed entry records its net change per key, tagged with its index: puts always,
    /// deletes only of keys that existed before the entry, nothing for a trapped entry.
    #[test]
    fn each_completed_entry_records_what_it_changed() {
        let base = MapState(BTreeMap::from([(b"old".to_vec(), b"0".to_vec())]));
        let mut txn = Txn::default();
        // 5: a put, a delete of a key that exists, a delete of one that does not.
        txn.put(b"a".to_vec(), b"1".to_vec());
        txn.delete(&base, b"old".to_vec()).unwrap();
        txn.delete(&base, b"never".to_vec()).unwrap();
        txn.keep_current(5);
        // 6: put then delete a key that did not exist before it: no change.
        txn.put(b"tmp".to_vec(), b"x".to_vec());
        txn.delete(&base, b"tmp".to_vec()).unwrap();
        txn.keep_current(6);
        // 7 traps: nothing recorded.
        txn.put(b"a".to_vec(), b"trapped".to_vec());
        txn.discard_current();
        // 8: delete a key entry 5 put, then put it again: a put.
        txn.delete(&base, b"a".to_vec()).unwrap();
        txn.put(b"a".to_vec(), b"2".to_vec());
        txn.keep_current(8);
        // 9: put a key (existing before via entry 8), then delete it: a delete.
        txn.put(b"a".to_vec(), b"3".to_vec());
        txn.delete(&base, b"a".to_vec()).unwrap();
        txn.keep_current(9);
        let (_, changes) = txn.take_done();
        assert_eq!(
            changes,
            vec![
                EntryChanges {
                    index: 5,
                    changes: vec![change(b"a", Some(b"1")), change(b"old", None)],
                },
                EntryChanges {
                    index: 8,
                    changes: vec![change(b"a", Some(b"2"))],
                },
                EntryChanges {
                    index: 9,
                    changes: vec![change(b"a", None)],
                },
            ]
        );
        assert_eq!(txn.take_done().1, Vec::new());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8),
        Delete(u8),
        Keep,
        Discard,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..16, any::<u8>()).prop_map(|(k, v)| Op::Put(k, v)),
            (0u8..16).prop_map(Op::Delete),
            Just(Op::Keep),
            Just(Op::Discard),
        ]
    }

    proptest! {
        /// The layered transaction behaves like a plain map that is copied at each `Keep` and
        /// restored at each `Discard`, and its merged scans (pairs and keys alone) agree with that
        /// map's ranges.
        #[test]
        fn txn_matches_a_model(
            committed in proptest::collection::btree_map(0u8..16, any::<u8>(), 0..16),
            ops in proptest::collection::vec(op(), 0..64),
            start in 0u8..16,
            end in proptest::option::of(0u8..17),
            limit in 0usize..20,
        ) {
            let base = MapState(committed.iter().map(|(k, v)| (vec![*k], vec![*v])).collect());
            let mut model: BTreeMap<Vec<u8>, Vec<u8>> = base.0.clone();
            let mut checkpoint = model.clone();
            let mut txn = Txn::default();
            for op in ops {
                match op {
                    Op::Put(k, v) => { txn.put(vec![k], vec![v]); model.insert(vec![k], vec![v]); }
                    Op::Delete(k) => {
                        let existed = txn.delete(&base, vec![k]).unwrap();
                        prop_assert_eq!(existed, model.remove(&vec![k]).is_some());
                    }
                    Op::Keep => { txn.keep_current(0); checkpoint = model.clone(); }
                    Op::Discard => { txn.discard_current(); model = checkpoint.clone(); }
                }
            }
            for k in 0u8..16 {
                prop_assert_eq!(txn.get(&base, &[k]).unwrap(), model.get(&vec![k]).cloned());
            }
            let end_key = end.map(|e| vec![e]);
            let upper = end_key.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
            let inverted = end.is_some_and(|e| e <= start);
            let expected: Pairs = if inverted { Vec::new() } else { model
                .range::<[u8], _>((Bound::Included(&[start][..]), upper))
                .take(limit)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect() };
            let keys: Vec<Vec<u8>> = expected.iter().map(|(k, _)| k.clone()).collect();
            prop_assert_eq!(txn.scan(&base, &[start], end_key.as_deref(), limit).unwrap(), expected);
            prop_assert_eq!(txn.scan_keys(&base, &[start], end_key.as_deref(), limit).unwrap(), keys);
        }
    }
}
