//! [`FjallLogStore`]: openraft's `RaftLogStorage` (and `RaftLogReader`) on fjall.
//!
//! Keyspace `raft.log` maps 8-byte big-endian indexes to encoded entries; `raft.meta` holds the
//! vote, the committed log id and the last purged log id (`codec` describes both). Appends are
//! readable as soon as `append` returns and reported flushed only after an fsync shared with the
//! appends around them ([`GroupCommit`]); votes are fsynced before `save_vote` returns;
//! truncations and purges are single batches, so the log never has a hole.

use std::fmt::Debug;
use std::io;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use fjall::{Database, Keyspace, PersistMode};
use openraft::entry::RaftEntry;
use openraft::storage::{IOFlushed, LogState, RaftLogStorage};
use openraft::type_config::alias::{EntryOf, LogIdOf, VoteOf};
use openraft::{OptionalSend, RaftLogReader};
use serde::de::DeserializeOwned;

use crate::proto::{TypeConfig, alpn};
use crate::raft::RaftStorageError;
use crate::raft::codec::{self, decode_index_key, index_key};
use crate::raft::log::append_budget::{AppendBudget, joins_batch};
use crate::raft::log::group_commit::GroupCommit;

const LOG_KEYSPACE: &str = "raft.log";
const META_KEYSPACE: &str = "raft.meta";
const VOTE_KEY: &[u8] = b"vote";
const COMMITTED_KEY: &[u8] = b"committed";
const LAST_PURGED_KEY: &[u8] = b"last_purged";

type C = TypeConfig;

/// The raft log on fjall. Cheap to clone; clones share the database and the fsync thread, which
/// stops when the last clone is dropped.
#[derive(Clone)]
pub struct FjallLogStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: Database,
    log: Keyspace,
    meta: Keyspace,
    group_commit: GroupCommit,
    budget: AppendBudget,
}

impl FjallLogStore {
    /// Opens (or creates) the raft log keyspaces in `db` and starts the fsync thread.
    pub fn open(db: &Database) -> Result<Self, RaftStorageError> {
        let open = |name: &str| {
            db.keyspace(name, crate::store::keyspace_options)
                .map_err(RaftStorageError::fjall("open", "raft log keyspace"))
        };
        let log = open(LOG_KEYSPACE)?;
        let meta = open(META_KEYSPACE)?;
        let group_commit = GroupCommit::start(db.clone())?;
        Ok(Self {
            inner: Arc::new(Inner {
                db: db.clone(),
                log,
                meta,
                group_commit,
                budget: AppendBudget::new(alpn::MAX_RAFT_FRAME),
            }),
        })
    }

    /// The database the log lives in (shared with the state machine).
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// The byte budget of one append-entries batch; the node keeps its frame limit at the
    /// replicated `max_raft_frame`.
    pub(crate) fn append_budget(&self) -> &AppendBudget {
        &self.inner.budget
    }

    /// fsyncs the group-commit thread has done, and the appends they made durable: the ratio is
    /// how many appends share an fsync.
    pub fn fsync_stats(&self) -> (u64, u64) {
        let group_commit = &self.inner.group_commit;
        (group_commit.fsyncs(), group_commit.appends())
    }

    /// How long the group-commit thread's fsyncs took.
    pub(crate) fn fsync_latency(&self) -> crate::proto::LatencyHistogram {
        self.inner.group_commit.fsync_latency()
    }

    /// Bytes the log keyspace's segments take on disk.
    pub(crate) fn log_disk_bytes(&self) -> u64 {
        self.inner.log.disk_space()
    }

    fn read_meta<T: DeserializeOwned>(
        &self,
        key: &[u8],
        subject: &'static str,
    ) -> Result<Option<T>, RaftStorageError> {
        self.inner
            .meta
            .get(key)
            .map_err(RaftStorageError::fjall("read", subject))?
            .map(|bytes| codec::decode(subject, &bytes))
            .transpose()
    }

    fn read_entries(
        &self,
        range: (Bound<[u8; 8]>, Bound<[u8; 8]>),
    ) -> Result<Vec<EntryOf<C>>, RaftStorageError> {
        // One fjall iterator reads at one sequence number: the range is read atomically.
        self.inner
            .log
            .range::<[u8; 8], _>(range)
            .map(|guard| {
                let (key, value) = guard
                    .into_inner()
                    .map_err(RaftStorageError::fjall("read", "raft log"))?;
                decode_entry(&key, &value)
            })
            .collect()
    }

    /// The entries from `start` (below `end`) that fit in one append-entries batch, read
    /// atomically; at least one if the log holds `start`.
    fn read_batch(&self, start: u64, end: u64) -> Result<Vec<EntryOf<C>>, RaftStorageError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let budget = self.inner.budget.batch_bytes();
        let (mut entries, mut bytes) = (Vec::new(), 0usize);
        let range = (
            Bound::Included(index_key(start)),
            Bound::Excluded(index_key(end)),
        );
        for guard in self.inner.log.range::<[u8; 8], _>(range) {
            let (key, value) = guard
                .into_inner()
                .map_err(RaftStorageError::fjall("read", "raft log"))?;
            if !joins_batch(entries.len(), bytes, value.len(), budget) {
                break;
            }
            bytes += value.len();
            entries.push(decode_entry(&key, &value)?);
        }
        Ok(entries)
    }

    fn last_entry(&self) -> Result<Option<EntryOf<C>>, RaftStorageError> {
        self.inner
            .log
            .last_key_value()
            .map(|guard| {
                let (key, value) = guard
                    .into_inner()
                    .map_err(RaftStorageError::fjall("read", "raft log"))?;
                decode_entry(&key, &value)
            })
            .transpose()
    }

    /// Deletes every entry in `range` and writes `meta` in the same batch.
    fn delete_entries(
        &self,
        range: (Bound<[u8; 8]>, Bound<[u8; 8]>),
        meta: Option<(&[u8], Vec<u8>)>,
        verb: &'static str,
    ) -> Result<(), RaftStorageError> {
        let inner = &self.inner;
        let mut batch = inner.db.batch();
        if let Some((key, value)) = meta {
            batch.insert(&inner.meta, key, value);
        }
        for guard in inner.log.range::<[u8; 8], _>(range) {
            let key = guard
                .key()
                .map_err(RaftStorageError::fjall("read", "raft log"))?;
            batch.remove(&inner.log, key);
        }
        batch
            .commit()
            .map_err(RaftStorageError::fjall(verb, "raft log"))
    }
}

/// Decodes an entry and checks it sits under its own index.
fn decode_entry(key: &[u8], value: &[u8]) -> Result<EntryOf<C>, RaftStorageError> {
    let index = decode_index_key(key)?;
    let entry: EntryOf<C> = codec::decode("raft log entry", value)?;
    if entry.index() != index {
        return Err(RaftStorageError::Corrupt {
            subject: "raft log entry",
            reason: format!("entry {} is stored under index {index}", entry.index()),
        });
    }
    Ok(entry)
}

fn key_bounds(range: &impl RangeBounds<u64>) -> (Bound<[u8; 8]>, Bound<[u8; 8]>) {
    let key = |bound: Bound<&u64>| match bound {
        Bound::Included(index) => Bound::Included(index_key(*index)),
        Bound::Excluded(index) => Bound::Excluded(index_key(*index)),
        Bound::Unbounded => Bound::Unbounded,
    };
    (key(range.start_bound()), key(range.end_bound()))
}

impl RaftLogReader<C> for FjallLogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        Ok(self.read_entries(key_bounds(&range))?)
    }

    async fn read_vote(&mut self) -> Result<Option<VoteOf<C>>, io::Error> {
        Ok(self.read_meta(VOTE_KEY, "vote")?)
    }

    /// What replication sends: bounded in bytes as well as openraft's entry count, so a batch of
    /// large entries never outgrows a raft frame.
    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<EntryOf<C>>, io::Error> {
        // Up to a frame's worth of reads and decoding: off the async workers.
        let this = self.clone();
        Ok(
            tokio::task::spawn_blocking(move || this.read_batch(start, end))
                .await
                .map_err(RaftStorageError::from)??,
        )
    }
}

impl RaftLogStorage<C> for FjallLogStore {
    type LogReader = Self;

    async fn get_log_state(&mut self) -> Result<LogState<C>, io::Error> {
        let last_purged_log_id: Option<LogIdOf<C>> =
            self.read_meta(LAST_PURGED_KEY, "last purged log id")?;
        let last_log_id = self.last_entry()?.map(|entry| entry.log_id());
        Ok(LogState {
            last_log_id: last_log_id.or(last_purged_log_id),
            last_purged_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &VoteOf<C>) -> Result<(), io::Error> {
        let value = codec::encode("vote", vote)?;
        let inner = self.inner.clone();
        // The vote must be on disk before this returns: fsync it, off the async runtime.
        tokio::task::spawn_blocking(move || {
            let mut batch = inner.db.batch().durability(Some(PersistMode::SyncAll));
            batch.insert(&inner.meta, VOTE_KEY, value);
            batch
                .commit()
                .map_err(RaftStorageError::fjall("save", "vote"))
        })
        .await
        .map_err(RaftStorageError::from)??;
        Ok(())
    }

    async fn save_committed(&mut self, committed: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        // Not fsynced on its own: it becomes durable with the next log fsync, and a stale value
        // only means re-applying a little less on restart.
        let value = codec::encode("committed log id", &committed)?;
        let mut batch = self.inner.db.batch();
        batch.insert(&self.inner.meta, COMMITTED_KEY, value);
        batch
            .commit()
            .map_err(RaftStorageError::fjall("save", "committed log id"))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogIdOf<C>>, io::Error> {
        Ok(self
            .read_meta::<Option<LogIdOf<C>>>(COMMITTED_KEY, "committed log id")?
            .flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: IOFlushed<C>) -> Result<(), io::Error>
    where
        I: IntoIterator<Item = EntryOf<C>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let inner = &self.inner;
        let mut batch = inner.db.batch();
        for entry in entries {
            let value = codec::encode("raft log entry", &entry)?;
            batch.insert(&inner.log, index_key(entry.index()), value);
        }
        // In the journal's buffer and the memtable: readable now, durable after the fsync.
        batch
            .commit()
            .map_err(RaftStorageError::fjall("append", "raft log"))?;
        inner.group_commit.submit(callback)?;
        Ok(())
    }

    async fn truncate_after(&mut self, last_log_id: Option<LogIdOf<C>>) -> Result<(), io::Error> {
        let start = last_log_id.map_or(Bound::Unbounded, |id| Bound::Excluded(index_key(id.index)));
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.delete_entries((start, Bound::Unbounded), None, "truncate")
        })
        .await
        .map_err(RaftStorageError::from)??;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogIdOf<C>) -> Result<(), io::Error> {
        let value = codec::encode("last purged log id", &log_id)?;
        // A purge deletes up to a snapshot's worth of entries: off the async workers.
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            this.delete_entries(
                (Bound::Unbounded, Bound::Included(index_key(log_id.index))),
                Some((LAST_PURGED_KEY, value)),
                "purge",
            )
        })
        .await
        .map_err(RaftStorageError::from)??;
        Ok(())
    }
}
