//! [`StateExport`]: a consistent, read-only copy-free view of a state machine's whole keyspace and
//! its applied marker at one instant, for writing a snapshot while applies continue.

use fjall::{Keyspace, Readable, Slice, Snapshot};

use super::{AppliedMark, StoreError};

/// Every pair of one data generation and the applied marker, as of one fjall snapshot.
pub(crate) struct StateExport {
    snapshot: Snapshot,
    data: Keyspace,
    applied: Option<AppliedMark>,
}

impl StateExport {
    pub(crate) fn new(snapshot: Snapshot, data: Keyspace, applied: Option<AppliedMark>) -> Self {
        Self {
            snapshot,
            data,
            applied,
        }
    }

    /// The applied marker committed together with the exported data (`None`: nothing applied).
    pub(crate) fn applied(&self) -> Option<&AppliedMark> {
        self.applied.as_ref()
    }

    /// The fjall snapshot everything is read from (other keyspaces read through it see the same
    /// instant).
    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Every pair, in key order.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = Result<(Slice, Slice), StoreError>> + '_ {
        self.snapshot.iter(&self.data).map(|guard| {
            guard
                .into_inner()
                .map_err(StoreError::fjall("export", "state machine data"))
        })
    }
}
