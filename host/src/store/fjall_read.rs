//! Reading a fjall keyspace for the state store: ranges in key order, and [`SnapshotView`], a
//! read-only view of the committed data as of one instant.

use std::ops::Bound;

use fjall::{Keyspace, Readable, Snapshot};

use super::{Pairs, StateRead, StoreError};

/// The range bounds fjall takes.
pub(crate) type Bounds<'a> = (Bound<&'a [u8]>, Bound<&'a [u8]>);

/// Up to `limit` pairs of `[start, end)`, read from the iterator `range` opens over the bounds.
pub(crate) fn scan_range<'a, I: Iterator<Item = fjall::Guard>>(
    start: &'a [u8],
    end: Option<&'a [u8]>,
    limit: usize,
    range: impl FnOnce(Bounds<'a>) -> I,
) -> Result<Pairs, StoreError> {
    if is_inverted(start, end) {
        return Ok(Vec::new());
    }
    range(bounds(start, end))
        .take(limit)
        .map(|guard| {
            let (k, v) = guard
                .into_inner()
                .map_err(StoreError::fjall("scan", "state machine data"))?;
            Ok((k.to_vec(), v.to_vec()))
        })
        .collect()
}

/// Up to `limit` keys of `[start, end)`, without reading their values, as [`scan_range`].
pub(crate) fn scan_key_range<'a, I: Iterator<Item = fjall::Guard>>(
    start: &'a [u8],
    end: Option<&'a [u8]>,
    limit: usize,
    range: impl FnOnce(Bounds<'a>) -> I,
) -> Result<Vec<Vec<u8>>, StoreError> {
    if is_inverted(start, end) {
        return Ok(Vec::new());
    }
    range(bounds(start, end))
        .take(limit)
        .map(|guard| {
            let key = guard
                .key()
                .map_err(StoreError::fjall("scan", "state machine keys"))?;
            Ok(key.to_vec())
        })
        .collect()
}

/// `[start, end)` with `end <= start` holds nothing.
fn is_inverted(start: &[u8], end: Option<&[u8]>) -> bool {
    end.is_some_and(|end| end <= start)
}

fn bounds<'a>(start: &'a [u8], end: Option<&'a [u8]>) -> Bounds<'a> {
    (
        Bound::Included(start),
        end.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

/// A read view over a fjall snapshot.
pub(crate) struct SnapshotView {
    pub(crate) snapshot: Snapshot,
    pub(crate) data: Keyspace,
}

impl StateRead for SnapshotView {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .snapshot
            .get(&self.data, key)
            .map_err(StoreError::fjall("read", "state machine snapshot"))?
            .map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Pairs, StoreError> {
        scan_range(start, end, limit, |bounds| {
            self.snapshot.range::<&[u8], _>(&self.data, bounds)
        })
    }

    fn scan_keys(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError> {
        scan_key_range(start, end, limit, |bounds| {
            self.snapshot.range::<&[u8], _>(&self.data, bounds)
        })
    }
}
