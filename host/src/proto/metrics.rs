//! A node's figures as they cross the wire: the categories and the typed snapshot `GetMetrics`
//! answers with.

use serde::{Deserialize, Serialize};

use super::RaftRole;

/// A group of figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MetricsCategory {
    /// Term, role, log positions, replication.
    Raft,
    /// Bytes on disk.
    Storage,
    /// Connections and bytes on the wire.
    Network,
    /// The state-machine plugin's work.
    Plugin,
    /// Management requests and subscriptions.
    Management,
}

impl MetricsCategory {
    /// Every category.
    pub const ALL: [MetricsCategory; 5] = [
        Self::Raft,
        Self::Storage,
        Self::Network,
        Self::Plugin,
        Self::Management,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raft => "raft",
            Self::Storage => "storage",
            Self::Network => "network",
            Self::Plugin => "plugin",
            Self::Management => "management",
        }
    }
}

impl std::str::FromStr for MetricsCategory {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown metrics category `{s}`: expected raft, storage, network, plugin or management")
            })
    }
}

/// Raft figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RaftFigures {
    /// The current term.
    pub term: u64,
    /// What the node is doing.
    pub state: RaftRole,
    /// The leader it knows of.
    pub leader: Option<u64>,
    /// Its last log index.
    pub last_log: Option<u64>,
    /// The committed index.
    pub committed: Option<u64>,
    /// The applied index.
    pub applied: Option<u64>,
    /// The last index the snapshot covers.
    pub snapshot: Option<u64>,
    /// The last purged index.
    pub purged: Option<u64>,
    /// On a leader: milliseconds since a quorum last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// On a leader: the largest replication lag of any member, in entries.
    pub max_replication_lag: Option<u64>,
}

/// Storage figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageFigures {
    /// Bytes the database (log, state, metadata) takes on disk.
    pub database_bytes: u64,
    /// Bytes the current snapshot takes.
    pub snapshot_bytes: u64,
}

/// Network figures of the node's endpoint (all protocols together).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFigures {
    /// Connections opened since start.
    pub connections_opened: u64,
    /// Connections closed since start.
    pub connections_closed: u64,
    /// Bytes sent over IP.
    pub bytes_sent: u64,
    /// Bytes received over IP.
    pub bytes_received: u64,
}

/// State-machine plugin figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginFigures {
    /// The state machine's name.
    pub state_machine: String,
    /// Its sha256.
    pub sha256: [u8; 32],
    /// Fuel its apply calls burned since start.
    pub fuel_consumed: u64,
    /// Instances created since start (one, plus one per trap or budget change).
    pub instances_created: u64,
}

/// Management figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagementFigures {
    /// Requests answered since start.
    pub requests: u64,
    /// Requests answered with an error.
    pub errors: u64,
    /// Requests this node forwarded to the leader.
    pub forwarded: u64,
    /// Event subscriptions open now.
    pub subscribers: u64,
    /// Requests the access policy refused here, by operation name (only those with a denial).
    pub denied: Vec<(String, u64)>,
}

/// The figures asked for; a category not asked for is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// The node.
    pub node_id: u64,
    /// Raft figures.
    pub raft: Option<RaftFigures>,
    /// Storage figures.
    pub storage: Option<StorageFigures>,
    /// Network figures.
    pub network: Option<NetworkFigures>,
    /// Plugin figures.
    pub plugin: Option<PluginFigures>,
    /// Management figures.
    pub management: Option<ManagementFigures>,
}
