//! The storage contract of the plugin runtime: committed reads, atomic commits with an applied
//! marker, and snapshot views for queries. Tests use the fjall implementation directly; the raft
//! state machine stores its log position in [`AppliedMark::extra`].

use serde::{Deserialize, Serialize};

use super::{EntryChanges, StoreError, WriteSet};

/// Key/value pairs in key order.
pub type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Reads of committed state.
pub trait StateRead: Send + Sync {
    /// Reads one key.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Returns up to `limit` pairs with keys in `[start, end)` (`end = None`: unbounded), in key
    /// order.
    fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Pairs, StoreError>;

    /// Returns up to `limit` keys in `[start, end)`, in key order, without reading their values.
    fn scan_keys(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>, StoreError>;
}

/// What was applied last: the log index, plus caller-defined bytes committed in the same batch
/// (the raft state machine keeps its log id and membership there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedMark {
    /// The last applied log index.
    pub index: u64,
    /// Opaque bytes stored atomically with the data.
    pub extra: Vec<u8>,
}

/// A state machine's durable keyspace.
pub trait StateStore: StateRead {
    /// Applies `writes` and records `applied`, with `changes` (what each entry changed, for
    /// watches), atomically: after a crash either all are visible or none is.
    fn commit(
        &self,
        writes: WriteSet,
        changes: Vec<EntryChanges>,
        applied: &AppliedMark,
    ) -> Result<(), StoreError>;

    /// The marker of the last commit, if any.
    fn applied(&self) -> Result<Option<AppliedMark>, StoreError>;

    /// A consistent read-only view of the committed state as of now, unaffected by later commits.
    fn read_view(&self) -> Box<dyn StateRead>;

    /// sha256 over every key and value in order: equal on replicas that hold the same data.
    fn content_hash(&self) -> Result<[u8; 32], StoreError>;
}
