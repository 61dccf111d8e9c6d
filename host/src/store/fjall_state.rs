//! [`StateStore`] on fjall: one data keyspace per state machine plus a metadata keyspace holding
//! the applied marker, both written by one atomic fjall batch.

use std::ops::Bound;

use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Readable, Snapshot};
use sha2::{Digest, Sha256};

use super::{AppliedMark, Pairs, StateRead, StateStore, StoreError, WriteSet};

const APPLIED_KEY: &[u8] = b"applied";

/// A state machine's keyspace in a fjall database.
#[derive(Clone)]
pub struct FjallStateStore {
    db: Database,
    data: Keyspace,
    meta: Keyspace,
    durability: Option<PersistMode>,
}

impl FjallStateStore {
    /// Opens (or creates) the keyspaces of the state machine called `name` in `db`.
    ///
    /// `durability` is how commits reach the disk: `None` leaves them in fjall's journal buffer
    /// (safe when a durable raft log can replay them), `Some(SyncAll)` fsyncs every commit.
    pub fn open(
        db: &Database,
        name: &str,
        durability: Option<PersistMode>,
    ) -> Result<Self, StoreError> {
        let open = |keyspace: String| {
            db.keyspace(&keyspace, KeyspaceCreateOptions::default)
                .map_err(StoreError::fjall("open", "state machine keyspace"))
        };
        Ok(Self {
            db: db.clone(),
            data: open(format!("sm.{name}.data"))?,
            meta: open(format!("sm.{name}.meta"))?,
            durability,
        })
    }
}

fn scan_range(iter: impl Iterator<Item = fjall::Guard>, limit: usize) -> Result<Pairs, StoreError> {
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
fn is_inverted(start: &[u8], end: Option<&[u8]>) -> bool {
    end.is_some_and(|end| end <= start)
}

fn bounds<'a>(start: &'a [u8], end: Option<&'a [u8]>) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    (
        Bound::Included(start),
        end.map_or(Bound::Unbounded, Bound::Excluded),
    )
}

impl StateRead for FjallStateStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .data
            .get(key)
            .map_err(StoreError::fjall("read", "state machine data"))?
            .map(|v| v.to_vec()))
    }

    fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Result<Pairs, StoreError> {
        if is_inverted(start, end) {
            return Ok(Vec::new());
        }
        scan_range(self.data.range::<&[u8], _>(bounds(start, end)), limit)
    }
}

impl StateStore for FjallStateStore {
    fn commit(&self, writes: WriteSet, applied: &AppliedMark) -> Result<(), StoreError> {
        let mut batch = self.db.batch().durability(self.durability);
        for (key, value) in writes.iter() {
            match value {
                Some(value) => batch.insert(&self.data, key, value),
                None => batch.remove(&self.data, key),
            }
        }
        let mark = postcard::to_allocvec(applied).map_err(|e| StoreError::Corrupt {
            subject: "applied marker",
            reason: e.to_string(),
        })?;
        batch.insert(&self.meta, APPLIED_KEY, mark);
        batch
            .commit()
            .map_err(StoreError::fjall("commit", "state machine batch"))
    }

    fn applied(&self) -> Result<Option<AppliedMark>, StoreError> {
        let Some(bytes) = self
            .meta
            .get(APPLIED_KEY)
            .map_err(StoreError::fjall("read", "applied marker"))?
        else {
            return Ok(None);
        };
        postcard::from_bytes(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt {
                subject: "applied marker",
                reason: e.to_string(),
            })
    }

    fn read_view(&self) -> Box<dyn StateRead> {
        Box::new(SnapshotView {
            snapshot: self.db.snapshot(),
            data: self.data.clone(),
        })
    }

    fn content_hash(&self) -> Result<[u8; 32], StoreError> {
        let mut hasher = Sha256::new();
        for guard in self.db.snapshot().iter(&self.data) {
            let (k, v) = guard
                .into_inner()
                .map_err(StoreError::fjall("hash", "state machine data"))?;
            for part in [&k[..], &v[..]] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
        }
        Ok(hasher.finalize().into())
    }
}

/// A read view over a fjall snapshot.
struct SnapshotView {
    snapshot: Snapshot,
    data: Keyspace,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, FjallStateStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::builder(dir.path()).open().unwrap();
        let store = FjallStateStore::open(&db, "test", None).unwrap();
        (dir, store)
    }

    #[test]
    fn commit_writes_data_and_marker_together() {
        let (_dir, store) = open();
        assert_eq!(store.applied().unwrap(), None);
        let mut writes = WriteSet::default();
        writes.put(b"a".to_vec(), b"1".to_vec());
        writes.put(b"b".to_vec(), b"2".to_vec());
        store
            .commit(
                writes,
                &AppliedMark {
                    index: 7,
                    extra: b"x".to_vec(),
                },
            )
            .unwrap();
        let mut writes = WriteSet::default();
        writes.delete(b"a".to_vec());
        store
            .commit(
                writes,
                &AppliedMark {
                    index: 8,
                    extra: Vec::new(),
                },
            )
            .unwrap();
        assert_eq!(store.get(b"a").unwrap(), None);
        assert_eq!(
            store.scan(b"", None, 10).unwrap(),
            vec![(b"b".to_vec(), b"2".to_vec())]
        );
        assert_eq!(store.applied().unwrap().map(|m| m.index), Some(8));
    }

    #[test]
    fn an_inverted_scan_is_empty() {
        let (_dir, store) = open();
        let mut writes = WriteSet::default();
        writes.put(b"b".to_vec(), b"1".to_vec());
        store.commit(writes, &AppliedMark::default()).unwrap();
        assert!(store.scan(b"c", Some(b"a"), 10).unwrap().is_empty());
        assert!(
            store
                .read_view()
                .scan(b"c", Some(b"a"), 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn read_view_ignores_later_commits() {
        let (_dir, store) = open();
        let mut writes = WriteSet::default();
        writes.put(b"k".to_vec(), b"old".to_vec());
        store.commit(writes, &AppliedMark::default()).unwrap();
        let view = store.read_view();
        let mut writes = WriteSet::default();
        writes.put(b"k".to_vec(), b"new".to_vec());
        store.commit(writes, &AppliedMark::default()).unwrap();
        assert_eq!(view.get(b"k").unwrap(), Some(b"old".to_vec()));
        assert_eq!(store.get(b"k").unwrap(), Some(b"new".to_vec()));
    }

    #[test]
    fn content_hash_depends_on_content_only() {
        let (_d1, one) = open();
        let (_d2, two) = open();
        let mut a = WriteSet::default();
        a.put(b"k".to_vec(), b"v".to_vec());
        one.commit(
            a.clone(),
            &AppliedMark {
                index: 1,
                extra: Vec::new(),
            },
        )
        .unwrap();
        two.commit(
            a,
            &AppliedMark {
                index: 9,
                extra: Vec::new(),
            },
        )
        .unwrap();
        assert_eq!(one.content_hash().unwrap(), two.content_hash().unwrap());
        let mut b = WriteSet::default();
        b.put(b"k".to_vec(), b"w".to_vec());
        two.commit(b, &AppliedMark::default()).unwrap();
        assert_ne!(one.content_hash().unwrap(), two.content_hash().unwrap());
    }
}
