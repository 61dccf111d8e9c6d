//! What `Watch` carries on `iroh-raft-mgmt/0`: the keys to watch and from which log index, each
//! change as the host recorded it, and why a watch ended.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::resource::prefix_end;

/// A watch request: every change to the keys in `[start, end)` from log index `from_index` on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchRequest {
    /// The first key watched.
    pub start: Bytes,
    /// The first key past the range; `None`: to the end of the keyspace.
    pub end: Option<Bytes>,
    /// The first log index whose changes are sent; `None`: the next index the node applies.
    pub from_index: Option<u64>,
}

impl WatchRequest {
    /// Every key starting with `prefix` (the whole keyspace for an empty one).
    pub fn prefix(prefix: impl Into<Bytes>, from_index: Option<u64>) -> Self {
        let start = prefix.into();
        let end = prefix_end(&start).map(Bytes::from);
        Self {
            start,
            end,
            from_index,
        }
    }

    /// Exactly `key`.
    pub fn key(key: impl Into<Bytes>, from_index: Option<u64>) -> Self {
        let start: Bytes = key.into();
        let mut end = start.to_vec();
        end.push(0);
        Self {
            start,
            end: Some(end.into()),
            from_index,
        }
    }

    /// Whether `key` is watched.
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= &self.start[..] && self.end.as_ref().is_none_or(|end| key < &end[..])
    }

    /// The one key watched, when the range holds exactly one.
    pub fn single_key(&self) -> Option<&[u8]> {
        let end = self.end.as_ref()?;
        (end.len() == self.start.len() + 1
            && end.starts_with(&self.start)
            && end.last() == Some(&0))
        .then_some(&self.start[..])
    }
}

/// The largest `Changes` frame a watcher accepts: any frame (its length is a `u32`). The node
/// never splits one entry's changes, and an entry may write up to `max_entry_write_bytes`; it
/// comes from the node the watcher chose, which sends no more than it holds.
pub const MAX_WATCH_FRAME: usize = u32::MAX as usize;

/// One change to a watched key, made by the entry at `index`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchChange {
    /// The log index of the entry that made it.
    pub index: u64,
    /// The key.
    pub key: Bytes,
    /// Its new value; `None`: the key was deleted.
    pub value: Option<Bytes>,
}

/// Where a watch begins, as the node answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchStart {
    /// The first index whose changes will be sent.
    pub from_index: u64,
    /// The oldest index whose changes the node still holds.
    pub oldest: u64,
    /// The last index the node had applied when the watch began.
    pub applied: u64,
}

/// Why the node ended a watch; every change before the index it names was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum WatchEnd {
    /// The watcher did not keep up: its queue filled. Watching again from `at` loses nothing while
    /// the node still holds that index.
    #[error(
        "the watch fell behind at index {at} (it did not read fast enough); resume from index {at}"
    )]
    FellBehind {
        /// The first index not sent.
        at: u64,
    },
    /// The node's data was replaced at `at` (it installed a snapshot, or applied a backup
    /// restore), so it has no changes to send from before it.
    #[error(
        "the node's data was replaced at index {at} (a snapshot install or a backup restore): \
         read the keys again and watch from index {}",
        at + 1
    )]
    Replaced {
        /// The index the data was replaced at.
        at: u64,
    },
    /// The node was removed from the cluster: it applies nothing more. Another member serves the
    /// watch from where it stopped.
    #[error(
        "the node was removed from the cluster and applies nothing more: watch through another \
         member, from the index after the last change received"
    )]
    Removed,
    /// The node has been out of touch with a leader for `after_ms` (cut off from the others, or
    /// a leader no quorum acknowledges): changes the cluster commits may not reach it, so it ends
    /// its watches rather than fall silent. Another member serves the watch from where it stopped.
    #[error(
        "the node has been out of touch with a leader for {after_ms} ms, so changes may not reach          it: watch through another member, from the index after the last change received"
    )]
    LostLeader {
        /// How long it had been out of touch.
        after_ms: u64,
    },
}
