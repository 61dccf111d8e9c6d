//! What a node answers on `iroh-raft-mgmt/0` when a request succeeds.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::{
    BackupInfo, CapturePoints, ClusterConfig, ClusterStatus, HealthStatus, JoinTicket,
    LeadershipResponse, LogEntryInfo, LogInfo, Member, MemberOperationResponse, MetricsSnapshot,
    PluginOutcome, PluginRecord, PluginRegistry, RestoreOutcome, SnapshotInfo, StateHash,
    WatchStart,
};

/// A successful reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// The write was committed at `index` and applied; `outcome` is the plugin's response or its
    /// error (a committed entry the plugin refused is still committed, on every replica alike).
    Written {
        /// The log index of the entry.
        index: u64,
        /// The plugin's response bytes, or why it failed.
        outcome: Result<Bytes, String>,
    },
    /// The query's answer, or the plugin's error.
    Read {
        /// The plugin's answer, or why it failed.
        outcome: Result<Bytes, String>,
    },
    /// The node's view of the cluster.
    Status(NodeStatus),
    /// The cluster as the leader sees it.
    ClusterStatus(ClusterStatus),
    /// What a membership operation did.
    Member(MemberOperationResponse),
    /// What a leadership change did.
    Leadership(LeadershipResponse),
    /// The cluster configuration (after an update: the new one).
    Configuration(ClusterConfig),
    /// A node's health.
    Health(HealthStatus),
    /// A node's figures.
    Metrics(Box<MetricsSnapshot>),
    /// Where a node's log stands.
    LogInfo(LogInfo),
    /// The log was purged up to `purged`.
    LogCompacted {
        /// The last purged index.
        purged: u64,
    },
    /// Log entries, in order.
    LogEntries(Vec<LogEntryInfo>),
    /// A node's current snapshot.
    Snapshot(SnapshotInfo),
    /// The subscription is open; events follow.
    Subscribed,
    /// A deploy or rollback took effect on every replica at its index, or changed nothing.
    Plugin(PluginOutcome),
    /// The plugins as this node has applied them.
    Plugins {
        /// Active plugins, rollback targets and history per kind.
        registry: PluginRegistry,
        /// The bundled state machine the cluster runs while none was deployed.
        bundled: Option<PluginRecord>,
    },
    // Variants below were added after the ones above; new ones go last.
    /// A node's state hash at an applied index.
    StateHash(StateHash),
    /// The applied indexes a node can hash.
    CapturePoints(CapturePoints),
    /// The backup just created.
    Backup(BackupInfo),
    /// The backups a node's handler holds, oldest index first.
    Backups(Vec<BackupInfo>),
    /// What a restore did.
    Restored(RestoreOutcome),
    /// A piece of a backup's image; shorter than asked means the end.
    BackupChunk(Bytes),
    /// The backup was deleted (or was not there).
    BackupDeleted,
    /// A join ticket through the answering node.
    JoinTicket(JoinTicket),
    /// The watch is open; `Changes` frames follow.
    Watching(WatchStart),
}

/// One node's view of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The cluster id.
    pub cluster_id: [u8; 16],
    /// This node's raft id.
    pub node_id: u64,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// The current term.
    pub term: u64,
    /// Voters and learners with their addresses.
    pub voters: Vec<(u64, Member)>,
    /// Non-voting members.
    pub learners: Vec<(u64, Member)>,
    /// The last log index this node has applied.
    pub applied: Option<u64>,
}
