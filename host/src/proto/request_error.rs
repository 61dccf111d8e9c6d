//! Why a request failed: every error a node answers on `iroh-raft-mgmt/0`, each saying what to do.

use serde::{Deserialize, Serialize};

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// No leader is known right now (an election is under way); retry shortly.
    #[error("the cluster has no leader right now (an election is under way); retry shortly")]
    NoLeader,
    /// The request could not be decoded.
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The request was larger than the protocol allows.
    #[error("request of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The node could not serve it; the text says why and what to do.
    #[error("{0}")]
    Unavailable(String),
    /// No member has this id.
    #[error(
        "node {node_id} is not a member of this cluster (`iroh-raft member list` shows the members)"
    )]
    UnknownMember {
        /// The id asked for.
        node_id: u64,
    },
    /// The id or key is taken.
    #[error("{0}")]
    MemberExists(String),
    /// The request is well formed but cannot be done; the text says why and what to do instead.
    #[error("{0}")]
    Refused(String),
    /// A leadership transfer was refused.
    #[error("leadership transfer refused: {0}")]
    TransferRefused(String),
    /// The configuration is invalid.
    #[error("invalid configuration: `{field}` {reason}")]
    InvalidConfig {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration changed since the client read it.
    #[error("the configuration is at version {current}, not {expected}: read it again and retry")]
    ConfigConflict {
        /// The version the update was based on.
        expected: u64,
        /// The version in effect.
        current: u64,
    },
    /// A log range that cannot be served.
    #[error("log range {start}..{end}: {reason}")]
    LogRange {
        /// The first index asked for.
        start: u64,
        /// One past the last index asked for.
        end: u64,
        /// Why it cannot be served.
        reason: String,
    },
    /// Log compaction beyond what the snapshot covers.
    #[error("{}", compact_refusal(*index, *snapshot))]
    CompactBeyondSnapshot {
        /// The index asked for.
        index: u64,
        /// What the snapshot covers.
        snapshot: Option<u64>,
    },
    /// No snapshot exists yet.
    #[error("this node has no snapshot yet (`iroh-raft snapshot trigger` takes one)")]
    NoSnapshot,
    /// Backups need a backup plugin.
    #[error(
        "no backup handler is deployed: deploy one with `iroh-raft plugin deploy --kind backup FILE.wasm`"
    )]
    NoBackupHandler,
    /// A plugin deploy or rollback was refused (the old plugin stays active); the text says why.
    #[error("refused: {0}")]
    PluginRefused(String),
    // Variants below were added after the ones above; new ones go last, so that every encoding
    // above stays as it was.
    /// This node's raft core has stopped (it exits and recovers on restart).
    #[error("this node's raft core has stopped ({reason}); ask another member while it restarts")]
    RaftStopped {
        /// What raft said.
        reason: String,
    },
    /// Raft could not do what the request needed.
    #[error("{action} failed: {reason}")]
    Raft {
        /// What was being done ("the write", "the membership change", ...).
        action: String,
        /// What raft said.
        reason: String,
    },
    /// This node could not read its own storage.
    #[error(
        "this node cannot read {what}: {reason}; ask another member, and check this node's log and disk"
    )]
    Storage {
        /// What it was reading.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// A task serving the request ended abnormally (a bug: please report it with the node's log).
    #[error(
        "the {task} task failed: {reason}; this is a bug, please report it with the node's log"
    )]
    TaskFailed {
        /// Which task.
        task: String,
        /// How it ended.
        reason: String,
    },
    /// Forwarding the request to the leader failed.
    #[error("forwarding to leader {leader} failed: {reason}; retry, the node may be restarting")]
    ForwardFailed {
        /// The leader it was sent to.
        leader: u64,
        /// Why.
        reason: String,
    },
    /// The request was not answered in time.
    #[error(
        "no answer within {after_ms} ms; the cluster may have lost its quorum (`iroh-raft status` shows the members)"
    )]
    TimedOut {
        /// How long the node waited.
        after_ms: u64,
    },
    /// A log purge was requested but has not happened yet.
    #[error(
        "the purge up to {index} was requested but has not happened within {after_ms} ms \
         (a follower may still be reading those entries); it will happen once they are replicated"
    )]
    PurgePending {
        /// The last index to purge.
        index: u64,
        /// How long the node waited.
        after_ms: u64,
    },
    /// The transfer target did not take office in time.
    #[error("node {target} did not take office within {after_ms} ms; the leader is now {leader:?}")]
    TransferTimedOut {
        /// The node leadership was handed to.
        target: u64,
        /// The leader now.
        leader: Option<u64>,
        /// How long the node waited.
        after_ms: u64,
    },
    /// A member being promoted left the membership first.
    #[error("node {node_id} left the membership before it was promoted")]
    MemberLeft {
        /// The member.
        node_id: u64,
    },
    /// This node stopped leading while a new voter caught up.
    #[error(
        "this node stopped leading while node {node_id} caught up; it is a learner and the new \
         leader promotes it once caught up"
    )]
    PromotionInterrupted {
        /// The member.
        node_id: u64,
    },
    /// A log entry was applied with an outcome its kind cannot have (a bug: please report it).
    #[error(
        "the entry at {index} was applied as {outcome}; this is a bug, please report it with the node's log"
    )]
    UnexpectedOutcome {
        /// The entry.
        index: u64,
        /// What applying it returned.
        outcome: String,
    },
    /// A command over the cluster's `max_command_bytes`, refused before it reached the log.
    #[error(
        "the command is {len} bytes, over the cluster's max_command_bytes of {max}; nothing was written \
         (`iroh-raft config set max_command_bytes=N` raises it)"
    )]
    CommandTooLarge {
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The node keeps no view of its state at this index, so it cannot hash it.
    #[error(
        "this node holds no state capture at index {index} (applied {applied:?}); it can hash at \
         {held:?}: ask for one of those, or leave the index out to list them"
    )]
    NoStateCapture {
        /// The index asked for.
        index: u64,
        /// The indexes it can hash, ascending.
        held: Vec<u64>,
        /// Its applied index.
        applied: Option<u64>,
    },
    /// This node was removed from its cluster and no longer serves; its health says so too.
    #[error(
        "node {node_id} was removed from the cluster (membership at log index {membership_index}) \
         and no longer serves: ask another member; to reuse this machine, wipe its data directory \
         and join again"
    )]
    Removed {
        /// This node.
        node_id: u64,
        /// The index of the membership that no longer names it.
        membership_index: u64,
    },
    /// This node has not caught up with the cluster since it started, so it does not serve yet
    /// by what may be an old configuration, membership or access policy.
    #[error(
        "this node is catching up with the cluster after starting (applied {applied:?} of \
         {committed:?} committed, leader {leader:?}); ask another member or retry shortly"
    )]
    CatchingUp {
        /// Its applied index.
        applied: Option<u64>,
        /// What it knows the cluster has committed.
        committed: Option<u64>,
        /// The leader it knows of.
        leader: Option<u64>,
    },
    /// The access policy refused the request (or no policy could decide, which also refuses).
    #[error("permission denied: {operation}{} — {reason}", if resource.is_empty() { String::new() } else { format!(" on {resource}") })]
    Denied {
        /// The operation's name (`data.write`, `member.add`, ...).
        operation: String,
        /// What it acted on ("" for none).
        resource: String,
        /// Why, as the policy (or the host, failing closed) put it.
        reason: String,
    },
    /// A backup operation failed: the backup directory, the handler, or the backup itself; the
    /// text says which, and nothing was changed.
    #[error("backup {what} failed: {reason}")]
    Backup {
        /// What was asked (`create`, `restore b-1`, ...).
        what: String,
        /// Why.
        reason: String,
    },
    /// A watch from an index whose changes this node no longer holds (etcd's "required revision
    /// has been compacted").
    #[error(
        "cannot watch from index {requested}: this node keeps changes only from index {oldest} \
         on (older ones were compacted; `watch_history` in the cluster configuration sets how \
         many it keeps); watch from {oldest} or later, after reading the keys again"
    )]
    Compacted {
        /// The index asked for.
        requested: u64,
        /// The oldest index the node still holds.
        oldest: u64,
    },
    /// The node has been out of touch with a leader for `after_ms` (cut off from the others, or
    /// a leader no quorum acknowledges), so it cannot promise what it serves is current.
    #[error(
        "this node has been out of touch with a leader for {after_ms} ms (it may be cut off from          the others): ask another member"
    )]
    OutOfTouch {
        /// How long it had been out of touch.
        after_ms: u64,
    },
}

/// Why the log cannot be compacted up to `index` when the snapshot covers `snapshot`, and what to
/// do instead.
fn compact_refusal(index: u64, snapshot: Option<u64>) -> String {
    match snapshot {
        None => format!(
            "cannot compact the log up to {index}: this node has no snapshot yet, so every entry \
             is still needed; take one with `iroh-raft snapshot trigger`, then compact up to the \
             index it covers"
        ),
        Some(covered) => format!(
            "cannot compact the log up to {index}: the snapshot covers the log only up to \
             {covered}; compact up to {covered} or less, or take a newer snapshot first with \
             `iroh-raft snapshot trigger`"
        ),
    }
}

impl RequestError {
    /// Whether the node refused only because of its own state (it has not caught up since it
    /// started, it was removed, or it is out of touch with a leader): another member may serve
    /// the request.
    pub fn another_member_may_serve(&self) -> bool {
        matches!(
            self,
            Self::CatchingUp { .. } | Self::Removed { .. } | Self::OutOfTouch { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bug_log_compact_past_the_snapshot_printed_some_and_advised_a_snapshot_that_existed() {
        let past = RequestError::CompactBeyondSnapshot {
            index: 30_000,
            snapshot: Some(28_416),
        }
        .to_string();
        assert!(!past.contains("Some("), "{past}");
        assert!(
            past.contains("only up to 28416; compact up to 28416 or less"),
            "{past}"
        );
        let none = RequestError::CompactBeyondSnapshot {
            index: 5,
            snapshot: None,
        }
        .to_string();
        assert!(none.contains("no snapshot yet"), "{none}");
    }
}
