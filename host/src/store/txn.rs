//! The apply transaction: a batch's writes held in memory over the committed state, in two layers
//! so that one entry's writes can be dropped (when it traps) without losing the entries before it.
//! Each entry's net changes are recorded as it completes, tagged with its index, for `watch`.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Change, EntryChanges, Pairs, StateRead, StoreError};

/// Buffered writes: `Some(value)` puts, `None` deletes. Ordered, so scans can merge it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteSet {
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl WriteSet {
    /// Number of distinct keys written.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Records a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Records a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// The buffered state of `key`: `None` if untouched, `Some(None)` if deleted.
    pub fn lookup(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes.get(key).map(Option::as_deref)
    }

    /// Iterates the writes in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.writes
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
    }

    /// Moves every write of `later` over this set, `later` winning.
    ///
    /// Inserts one by one: `BTreeMap::append` rebuilds the whole tree (O(n + m)), which made
    /// absorbing one entry at a time quadratic over a batch.
    fn absorb(&mut self, later: &mut WriteSet) {
        if self.writes.is_empty() {
            std::mem::swap(&mut self.writes, &mut later.writes);
            return;
        }
        for (key, value) in std::mem::take(&mut later.writes) {
            self.writes.insert(key, value);
        }
    }

    fn range<'a>(
        &'a self,
        start: &'a [u8],
        end: Option<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)> + 'a {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        self.writes
            .range::<[u8], _>((Bound::Included(start), upper))
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
        // An inverted range is empty (and `BTreeMap::range` would panic on it).
        if limit == 0 || end.is_some_and(|end| end <= start) {
            return Ok(Vec::new());
        }
        // The buffered writes in range, newest layer winning.
        let mut overlay: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for layer in [&self.done, &self.current] {
            for (k, v) in layer.range(start, end) {
                overlay.insert(k.as_slice(), v.as_deref());
            }
        }
        if overlay.is_empty() {
            return base.scan(start, end, limit);
        }
        // Each buffered delete can hide one committed pair, so ask for that many more.
        let deletes = overlay.values().filter(|v| v.is_none()).count();
        let committed = base.scan(start, end, limit.saturating_add(deletes))?;
        let mut merged = Vec::with_capacity(limit.min(committed.len() + overlay.len()));
        let mut committed = committed.into_iter().peekable();
        let mut overlay = overlay.into_iter().peekable();
        while merged.len() < limit {
            let take_overlay = match (committed.peek(), overlay.peek()) {
                (None, None) => break,
                (Some(_), None) => false,
                (None, Some(_)) => true,
                (Some((ck, _)), Some((ok, _))) => ok <= &ck.as_slice(),
            };
            if take_overlay {
                let Some((key, value)) = overlay.next() else {
                    break;
                };
                if committed.peek().is_some_and(|(ck, _)| ck.as_slice() == key) {
                    committed.next();
                }
                if let Some(value) = value {
                    merged.push((key.to_vec(), value.to_vec()));
                }
            } else if let Some(pair) = committed.next() {
                merged.push(pair);
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
            .iter()
            .filter(|(key, value)| value.is_some() || existed_before.get(*key) != Some(&false))
            .map(|(key, value)| Change {
                key: key.to_vec(),
                value: value.map(<[u8]>::to_vec),
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
    use proptest::prelude::*;

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
            key: key.to_vec(),
            value: value.map(<[u8]>::to_vec),
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
        /// restored at each `Discard`, and its merged scans agree with that map's ranges.
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
            prop_assert_eq!(txn.scan(&base, &[start], end_key.as_deref(), limit).unwrap(), expected);
        }
    }
}
