//! The log and snapshot operations (`GetLogInfo`, `GetLogEntries`, `CompactLog`,
//! `TriggerSnapshot`, `GetSnapshotInfo`) as functions over [`LogAccess`], a view of the node's log,
//! state machine and raft core. What a request may ask for (ranges, sizes, how far a compaction may
//! go) is decided by the pure checks at the bottom, which the tests feed by hand.

use std::path::Path;
use std::time::Duration;

use openraft::async_runtime::WatchReceiver;
use openraft::storage::RaftLogReader;
use openraft::{EntryPayload, Raft};

use super::inspect::View;
use crate::metrics;
use crate::proto::{
    LogEntryInfo, LogEntryKind, LogInfo, LogPayload, Reply, RequestError, SnapshotInfo, TypeConfig,
};
use crate::raft::{FjallLogStore, RaftStorage, StateMachineStore};

type C = TypeConfig;

/// The most log entries one request returns.
pub(crate) const MAX_LOG_ENTRIES: u64 = 1000;
/// The most command bytes one log-entries reply carries.
pub(crate) const MAX_LOG_ENTRY_BYTES: usize = 4 << 20;
/// How long a compaction may take to happen before the request answers that it is pending.
const PURGE_WAIT: Duration = Duration::from_secs(10);

/// What the log operations read: the node's raft core, log, state machine and data directory.
pub(crate) struct LogAccess<'a> {
    pub(crate) raft: Raft<C, StateMachineStore>,
    pub(crate) log: &'a FjallLogStore,
    pub(crate) state_machine: &'a StateMachineStore,
    pub(crate) node_id: u64,
    pub(crate) storage_dir: &'a Path,
}

fn raft_stopped(error: impl std::fmt::Display) -> RequestError {
    RequestError::RaftStopped {
        reason: error.to_string(),
    }
}

fn storage(what: &str) -> impl FnOnce(crate::raft::RaftStorageError) -> RequestError + '_ {
    move |error| RequestError::Storage {
        what: what.into(),
        reason: error.to_string(),
    }
}

impl LogAccess<'_> {
    /// `GetLogInfo`.
    pub(crate) fn info(&self) -> Result<LogInfo, RequestError> {
        let view = View::of(&self.raft);
        let first = view
            .last_log
            .map(|_| view.purged.map_or(0, |purged| purged + 1));
        let entries = match (first, view.last_log) {
            (Some(first), Some(last)) => (last + 1).saturating_sub(first),
            _ => 0,
        };
        Ok(LogInfo {
            node_id: self.node_id,
            first,
            last: view.last_log,
            committed: view.committed,
            applied: view.applied,
            purged: view.purged,
            snapshot: view.snapshot,
            entries,
            storage_bytes: metrics::dir_size(&RaftStorage::database_dir(self.storage_dir)),
            snapshot_bytes: self.snapshot_size()?,
        })
    }

    /// Bytes of the current snapshot (0 without one).
    pub(crate) fn snapshot_size(&self) -> Result<u64, RequestError> {
        Ok(self
            .state_machine
            .current_snapshot()
            .map_err(storage("its snapshot"))?
            .map_or(0, |(_, size)| size))
    }

    /// `CompactLog`: purges up to `index` once no replication still reads those entries.
    pub(crate) async fn compact(&self, index: u64) -> Result<Reply, RequestError> {
        let view = View::of(&self.raft);
        if let Some(purged) = check_compact(index, view.snapshot, view.purged)? {
            return Ok(Reply::LogCompacted { purged });
        }
        self.raft
            .trigger()
            .purge_log(index)
            .await
            .map_err(raft_stopped)?;
        let mut metrics = self.raft.metrics();
        let deadline = tokio::time::Instant::now() + PURGE_WAIT;
        loop {
            let purged = View::of(&self.raft).purged;
            if purged.is_some_and(|purged| purged >= index) {
                return Ok(Reply::LogCompacted {
                    purged: purged.unwrap_or(index),
                });
            }
            if tokio::time::timeout_at(deadline, metrics.changed())
                .await
                .is_err()
            {
                return Err(RequestError::PurgePending {
                    index,
                    after_ms: PURGE_WAIT.as_millis() as u64,
                });
            }
        }
    }

    /// `GetLogEntries`: entries `start..end`, within the count and byte budgets. Entries are read
    /// one at a time and the budget is checked after each, so a request for many large entries
    /// holds at most the budget plus one entry in memory.
    pub(crate) async fn entries(&self, start: u64, end: u64) -> Result<Reply, RequestError> {
        let view = View::of(&self.raft);
        check_range(start, end, view.purged, view.last_log)
            .map_err(|reason| RequestError::LogRange { start, end, reason })?;
        let mut log = self.log.clone();
        let mut bytes = 0usize;
        let mut infos = Vec::with_capacity((end - start) as usize);
        for index in start..end {
            let entries = log
                .try_get_log_entries(index..index + 1)
                .await
                .map_err(|error| RequestError::Storage {
                    what: "its log".into(),
                    reason: error.to_string(),
                })?;
            let Some(entry) = entries.into_iter().next() else {
                return Err(RequestError::LogRange {
                    start,
                    end,
                    reason: format!("entry {index} was compacted meanwhile; ask again"),
                });
            };
            let kind = match entry.payload {
                EntryPayload::Blank => LogEntryKind::Blank,
                EntryPayload::Membership(membership) => LogEntryKind::Membership {
                    voters: membership.voter_ids().collect(),
                    learners: membership.learner_ids().collect(),
                },
                EntryPayload::Normal(
                    LogPayload::Command(command) | LogPayload::SessionCommand { command, .. },
                ) => {
                    bytes += command.len();
                    LogEntryKind::Command(command)
                }
                EntryPayload::Normal(LogPayload::Config(config)) => LogEntryKind::Config(config),
                EntryPayload::Normal(other) => LogEntryKind::Other(other.to_string()),
            };
            check_reply_bytes(bytes).map_err(|reason| RequestError::LogRange {
                start,
                end,
                reason,
            })?;
            infos.push(LogEntryInfo {
                index: entry.log_id.index,
                term: entry.log_id.leader_id.term,
                kind,
            });
        }
        Ok(Reply::LogEntries(infos))
    }

    /// `GetSnapshotInfo`.
    pub(crate) fn snapshot_info(&self) -> Result<SnapshotInfo, RequestError> {
        let (log_id, size) = self
            .state_machine
            .current_snapshot()
            .map_err(storage("its snapshot"))?
            .ok_or(RequestError::NoSnapshot)?;
        Ok(SnapshotInfo {
            node_id: self.node_id,
            index: log_id.index,
            term: log_id.leader_id.term,
            size,
        })
    }

    /// `TriggerSnapshot`: answered once a snapshot covers everything applied when it was asked.
    pub(crate) async fn trigger_snapshot(&self) -> Result<Reply, RequestError> {
        let view = View::of(&self.raft);
        let Some(applied) = view.applied else {
            return Err(RequestError::Refused(
                "nothing is applied yet, so there is nothing to snapshot".into(),
            ));
        };
        if view.snapshot.is_none_or(|at| at < applied) {
            self.raft.trigger().snapshot().await.map_err(raft_stopped)?;
            let mut metrics = self.raft.metrics();
            while View::of(&self.raft).snapshot.is_none_or(|at| at < applied) {
                if metrics.changed().await.is_err() {
                    return Err(raft_stopped("it stopped while the snapshot was taken"));
                }
            }
        }
        Ok(Reply::Snapshot(self.snapshot_info()?))
    }
}

/// Whether entries `start..end` may be served from a log purged up to `purged` and ending at
/// `last_log`; the error says why not.
pub(crate) fn check_range(
    start: u64,
    end: u64,
    purged: Option<u64>,
    last_log: Option<u64>,
) -> Result<(), String> {
    if start >= end {
        return Err("the range is empty: end must be greater than start".into());
    }
    if end - start > MAX_LOG_ENTRIES {
        return Err(format!(
            "{} entries asked for; at most {MAX_LOG_ENTRIES} per request",
            end - start
        ));
    }
    if let Some(purged) = purged.filter(|purged| start <= *purged) {
        return Err(format!(
            "entries up to {purged} were compacted into the snapshot; start at {} or later",
            purged + 1
        ));
    }
    match last_log {
        Some(last) if end <= last + 1 => Ok(()),
        last => Err(format!(
            "the log ends at {}",
            last.map_or("nothing (it is empty)".into(), |l| l.to_string())
        )),
    }
}

/// Whether a reply carrying `bytes` of commands is still within budget.
pub(crate) fn check_reply_bytes(bytes: usize) -> Result<(), String> {
    if bytes > MAX_LOG_ENTRY_BYTES {
        return Err(format!(
            "the entries hold more than {MAX_LOG_ENTRY_BYTES} bytes; ask for fewer"
        ));
    }
    Ok(())
}

/// Whether the log may be compacted up to `index` given the snapshot and what is purged already:
/// `Ok(Some(purged))` when nothing is left to do.
pub(crate) fn check_compact(
    index: u64,
    snapshot: Option<u64>,
    purged: Option<u64>,
) -> Result<Option<u64>, RequestError> {
    if snapshot.is_none_or(|snapshot| index > snapshot) {
        return Err(RequestError::CompactBeyondSnapshot { index, snapshot });
    }
    Ok(purged.filter(|purged| *purged >= index))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_must_be_non_empty_bounded_and_inside_the_log() {
        assert!(
            check_range(5, 5, None, Some(10))
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            check_range(6, 5, None, Some(10))
                .unwrap_err()
                .contains("empty")
        );
        assert!(
            check_range(1, 1 + MAX_LOG_ENTRIES + 1, None, Some(5000))
                .unwrap_err()
                .contains("at most 1000")
        );
        assert_eq!(
            check_range(1, 1 + MAX_LOG_ENTRIES, None, Some(5000)),
            Ok(())
        );
        let purged = check_range(3, 5, Some(3), Some(10)).unwrap_err();
        assert!(purged.contains("start at 4"), "{purged}");
        assert_eq!(check_range(4, 11, Some(3), Some(10)), Ok(()));
        assert!(
            check_range(4, 12, Some(3), Some(10))
                .unwrap_err()
                .contains("ends at 10")
        );
        assert!(
            check_range(1, 2, None, None)
                .unwrap_err()
                .contains("it is empty")
        );
    }

    #[test]
    fn replies_stay_within_the_byte_budget() {
        assert_eq!(check_reply_bytes(MAX_LOG_ENTRY_BYTES), Ok(()));
        assert!(
            check_reply_bytes(MAX_LOG_ENTRY_BYTES + 1)
                .unwrap_err()
                .contains("ask for fewer")
        );
    }

    #[test]
    fn compaction_stops_at_the_snapshot() {
        assert_eq!(
            check_compact(5, None, None),
            Err(RequestError::CompactBeyondSnapshot {
                index: 5,
                snapshot: None
            })
        );
        assert_eq!(
            check_compact(11, Some(10), None),
            Err(RequestError::CompactBeyondSnapshot {
                index: 11,
                snapshot: Some(10)
            })
        );
        assert_eq!(check_compact(10, Some(10), None), Ok(None));
        assert_eq!(check_compact(8, Some(10), Some(9)), Ok(Some(9)));
        assert_eq!(check_compact(10, Some(10), Some(9)), Ok(None));
    }
}
