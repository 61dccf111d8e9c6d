//! [`StateImport`]: loads a replacement for a state machine's whole keyspace into a fresh data
//! generation, invisible until [`StateImport::finish`] flips to it in one durable batch. Dropped
//! unfinished, it deletes the partial generation.

use super::fjall_state::DataGeneration;
use super::{AppliedMark, FjallStateStore, StoreError};

/// Bytes buffered before a write batch is committed to the new generation.
const BATCH_BYTES: usize = 4 << 20;

/// A keyspace replacement being loaded.
pub(crate) struct StateImport {
    store: FjallStateStore,
    /// `None` once finished.
    next: Option<DataGeneration>,
    batch: Option<fjall::OwnedWriteBatch>,
    batch_bytes: usize,
    pairs: u64,
}

impl StateImport {
    pub(crate) fn new(store: FjallStateStore, next: DataGeneration) -> Self {
        Self {
            store,
            next: Some(next),
            batch: None,
            batch_bytes: 0,
            pairs: 0,
        }
    }

    /// Adds one pair to the new generation.
    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>) -> Result<(), StoreError> {
        let Some(next) = &self.next else {
            return Err(StoreError::Corrupt {
                subject: "state import",
                reason: "put after finish".into(),
            });
        };
        let batch = self.batch.get_or_insert_with(|| {
            self.store
                .database()
                .batch()
                .durability(self.store.durability())
        });
        self.batch_bytes += key.len() + value.len();
        batch.insert(&next.keyspace, key, value);
        self.pairs += 1;
        if self.batch_bytes >= BATCH_BYTES {
            self.commit_batch()?;
        }
        Ok(())
    }

    /// Number of pairs added so far.
    pub(crate) fn pairs(&self) -> u64 {
        self.pairs
    }

    fn commit_batch(&mut self) -> Result<(), StoreError> {
        self.batch_bytes = 0;
        match self.batch.take() {
            Some(batch) => batch
                .commit()
                .map_err(StoreError::fjall("commit", "snapshot import batch")),
            None => Ok(()),
        }
    }

    /// Makes the imported pairs the state machine's data and records `applied`, atomically and
    /// durably; the old generation is dropped.
    pub(crate) fn finish(mut self, applied: &AppliedMark) -> Result<(), StoreError> {
        self.commit_batch()?;
        let Some(next) = self.next.take() else {
            return Err(StoreError::Corrupt {
                subject: "state import",
                reason: "finished twice".into(),
            });
        };
        self.store.flip(next, applied)
    }
}

impl Drop for StateImport {
    fn drop(&mut self) {
        if let Some(next) = self.next.take() {
            self.batch = None;
            if let Err(error) = self.store.drop_generation(next.number) {
                // Not fatal: the next open drops every generation but the live one.
                tracing::warn!(
                    generation = next.number,
                    "could not drop an abandoned snapshot import: {error}"
                );
            }
        }
    }
}
