//! Reading a fjall keyspace for the state store: ranges in key order, and [`SnapshotView`], a
//! read-only view of the committed data as of one instant.

use std::ops::Bound;

use fjall::{Keyspace, Readable, Snapshot};

use super::{Pairs, StateRead, StoreError};

pub(crate) fn scan_range(
    iter: impl Iterator<Item = fjall::Guard>,
    limit: usize,
) -> Result<Pairs, StoreError> {
    iter.take(limit)
        .map(|guard| {
            let (k, v) = guard
                .into_inner()
                .map_err(StoreError::fjall("scan", "state machine data"))?;
            Ok((k.to_vec(), v.to_vec()))
        })
        .collect()
}

/// `[start, end)` with `end <= start` holds nothing.
pub(crate) fn is_inverted(start: &[u8], end: Option<&[u8]>) -> bool {
    end.is_some_and(|end| end <= start)
}

pub(crate) fn bounds<'a>(
    start: &'a [u8],
    end: Option<&'a [u8]>,
) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
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
        if is_inverted(start, end) {
            return Ok(Vec::new());
        }
        scan_range(
            self.snapshot
                .range::<&[u8], _>(&self.data, bounds(start, end)),
            limit,
        )
    }
}
