//! What a node answers about its log and its snapshot.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::ClusterConfig;

/// Where a node's log stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogInfo {
    /// The node.
    pub node_id: u64,
    /// The first index still in the log.
    pub first: Option<u64>,
    /// The last index in the log.
    pub last: Option<u64>,
    /// The committed index.
    pub committed: Option<u64>,
    /// The applied index.
    pub applied: Option<u64>,
    /// The last purged index (everything up to it is gone from the log).
    pub purged: Option<u64>,
    /// The last index the current snapshot covers.
    pub snapshot: Option<u64>,
    /// Entries in the log.
    pub entries: u64,
    /// Bytes the whole storage takes on disk (log, state and metadata share one database).
    pub storage_bytes: u64,
    /// Bytes the current snapshot takes.
    pub snapshot_bytes: u64,
}

/// What a log entry carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogEntryKind {
    /// A leader's first entry of its term.
    Blank,
    /// A membership change.
    Membership {
        /// The voters (in a joint change, of every configuration).
        voters: Vec<u64>,
        /// The learners and observers.
        learners: Vec<u64>,
    },
    /// A state-machine command, as proposed.
    Command(Bytes),
    /// A cluster configuration.
    Config(ClusterConfig),
    /// Any other entry, described in words.
    Other(String),
}

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntryInfo {
    /// Its index.
    pub index: u64,
    /// The term of the leader that wrote it.
    pub term: u64,
    /// What it carries.
    pub kind: LogEntryKind,
}

/// The node's current snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotInfo {
    /// The node.
    pub node_id: u64,
    /// The last index it covers.
    pub index: u64,
    /// The term of that entry.
    pub term: u64,
    /// Its size in bytes.
    pub size: u64,
}
