//! [`WriteSet`]: one layer of an apply transaction's buffered writes.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;

/// Buffered writes: `Some(value)` puts, `None` deletes. Ordered, so scans can merge it. The bytes
/// are shared with the change records (`keep_current`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteSet {
    writes: BTreeMap<Bytes, Option<Bytes>>,
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
        self.writes.insert(key.into(), Some(value.into()));
    }

    /// Records a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key.into(), None);
    }

    /// The buffered state of `key`: `None` if untouched, `Some(None)` if deleted.
    pub fn lookup(&self, key: &[u8]) -> Option<Option<&[u8]>> {
        self.writes.get(key).map(Option::as_deref)
    }

    /// Iterates the writes in key order, sharing their bytes.
    pub(super) fn shared(&self) -> impl Iterator<Item = (&Bytes, &Option<Bytes>)> {
        self.writes.iter()
    }

    /// Iterates the writes in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> {
        self.writes.iter().map(|(k, v)| (&k[..], v.as_deref()))
    }

    /// Moves every write of `later` over this set, `later` winning.
    ///
    /// Inserts one by one: `BTreeMap::append` rebuilds the whole tree (O(n + m)), which made
    /// absorbing one entry at a time quadratic over a batch.
    pub(super) fn absorb(&mut self, later: &mut WriteSet) {
        if self.writes.is_empty() {
            std::mem::swap(&mut self.writes, &mut later.writes);
            return;
        }
        for (key, value) in std::mem::take(&mut later.writes) {
            self.writes.insert(key, value);
        }
    }

    /// The writes in `[start, end)`, in key order.
    pub(super) fn range<'a>(
        &'a self,
        start: &'a [u8],
        end: Option<&'a [u8]>,
    ) -> impl Iterator<Item = (&'a Bytes, &'a Option<Bytes>)> + 'a {
        let upper = end.map_or(Bound::Unbounded, Bound::Excluded);
        self.writes
            .range::<[u8], _>((Bound::Included(start), upper))
    }
}
