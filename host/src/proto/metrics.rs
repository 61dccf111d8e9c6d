//! A node's figures as they cross the wire: the categories and the typed snapshot `GetMetrics`
//! answers with.

use serde::{Deserialize, Serialize};

use super::{LatencyHistogram, PluginKind, RaftRole};

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
    /// The node process: CPU time and peak memory.
    Process,
}

impl MetricsCategory {
    /// Every category.
    pub const ALL: [MetricsCategory; 6] = [
        Self::Raft,
        Self::Storage,
        Self::Network,
        Self::Plugin,
        Self::Management,
        Self::Process,
    ];

    /// The name used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raft => "raft",
            Self::Storage => "storage",
            Self::Network => "network",
            Self::Plugin => "plugin",
            Self::Management => "management",
            Self::Process => "process",
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
                format!("unknown metrics category `{s}`: expected raft, storage, network, plugin, management or process")
            })
    }
}

/// What the leader knows of one follower's replication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowerFigures {
    /// The follower.
    pub node_id: u64,
    /// The last index the leader knows it holds.
    pub matched: Option<u64>,
    /// Entries it is behind the leader's last log index.
    pub lag: Option<u64>,
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
    /// On a leader: every other member's matched index and lag.
    pub followers: Vec<FollowerFigures>,
    /// Times this node saw the term rise since it started (each is an election somewhere).
    pub elections: u64,
    /// Times the leader it knows of changed since it started.
    pub leader_changes: u64,
    /// Client writes this node proposed as leader, and how long each took from proposal to
    /// applied (`client_write`); failed proposals are counted in `proposals_failed` only.
    pub proposal_latency: LatencyHistogram,
    /// Proposals that failed (this node stopped leading, the core stopped, ...).
    pub proposals_failed: u64,
}

/// Bytes one fjall keyspace takes on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyspaceFigures {
    /// The keyspace (`raft.log`, `sm.kv.data`, ...).
    pub name: String,
    /// Its segments' bytes on disk (what is still only in the journal is not counted).
    pub bytes: u64,
}

/// Storage figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageFigures {
    /// Bytes the database directory (log, state, metadata, journal) takes on disk.
    pub database_bytes: u64,
    /// Bytes the raft log keyspace takes on disk.
    pub log_bytes: u64,
    /// Per keyspace, bytes on disk.
    pub keyspaces: Vec<KeyspaceFigures>,
    /// Bytes the current snapshot takes.
    pub snapshot_bytes: u64,
    /// Seconds since the current snapshot was written (`None` without one).
    pub snapshot_age_secs: Option<u64>,
    /// Journal fsyncs of the raft log, and how long each took (`Database::persist(SyncAll)`
    /// in the group-commit thread; one fsync makes every queued append durable).
    pub fsync_latency: LatencyHistogram,
    /// Log appends those fsyncs made durable.
    pub appends_synced: u64,
}

/// Connections and bytes of one protocol (ALPN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolFigures {
    /// The ALPN, e.g. `iroh-raft/0`.
    pub alpn: String,
    /// Connections accepted or dialled since start.
    pub connections_opened: u64,
    /// Of those, still open.
    pub connections_open: u64,
    /// UDP payload bytes sent on them (QUIC framing included).
    pub bytes_sent: u64,
    /// UDP payload bytes received on them.
    pub bytes_received: u64,
}

/// Raft RPCs to one peer: unary ones (vote, pre-vote, append-entries, transfer-leader) from send
/// to reply, and each append-entries batch of the pipelined stream (replication and heartbeats)
/// from its write to its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRpcFigures {
    /// The peer.
    pub node_id: u64,
    /// Round trips of the RPCs it answered.
    pub latency: LatencyHistogram,
    /// RPCs that failed or timed out.
    pub failures: u64,
}

/// Network figures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkFigures {
    /// Connections the endpoint opened since start (all protocols).
    pub connections_opened: u64,
    /// Connections the endpoint closed since start.
    pub connections_closed: u64,
    /// Bytes the endpoint sent over IP.
    pub bytes_sent: u64,
    /// Bytes the endpoint received over IP.
    pub bytes_received: u64,
    /// Per protocol: the connections this node accepted, and the raft connections it dialled.
    pub protocols: Vec<ProtocolFigures>,
    /// Per peer: raft RPC round trips.
    pub peers: Vec<PeerRpcFigures>,
}

/// The plugin active for one kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivePlugin {
    /// Its kind.
    pub kind: PluginKind,
    /// sha256 of its bytes.
    pub sha256: [u8; 32],
    /// The version its deploy named ("" if none).
    pub version: String,
    /// The log index it became active at (0: the bundled default).
    pub index: u64,
}

/// Plugin figures. The counters and the histogram are those of the state machine instance
/// applying entries now: a deploy, a rollback or a snapshot install starts them again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginFigures {
    /// The state machine's name.
    pub state_machine: String,
    /// Its sha256.
    pub sha256: [u8; 32],
    /// Fuel its apply calls burned.
    pub fuel_consumed: u64,
    /// Instances created (one, plus one per trap or budget change).
    pub instances_created: u64,
    /// One observation per apply call (a batch of committed entries in one wasm call): its
    /// duration, commit excluded.
    pub apply_latency: LatencyHistogram,
    /// Entries applied.
    pub entries_applied: u64,
    /// Entries that trapped, by kind (`out_of_fuel`, `out_of_memory`, `trapped`, `malformed`,
    /// `over_write_budget`); only kinds seen.
    pub traps: Vec<(String, u64)>,
    /// The active plugin of each kind that has one deployed.
    pub active: Vec<ActivePlugin>,
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
    /// Requests by operation name (those of the access table: `data.write`, `metrics.read`,
    /// ...), metrics-protocol requests included; only operations asked for.
    pub requests_by_operation: Vec<(String, u64)>,
    /// Requests the access policy refused here, by operation name (only those with a denial).
    pub denied: Vec<(String, u64)>,
}

/// The node process's figures, as the kernel counts them (`getrusage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessFigures {
    /// CPU time spent in user mode since the process started, in microseconds.
    pub cpu_user_us: u64,
    /// CPU time spent in the kernel on the process's behalf, in microseconds.
    pub cpu_system_us: u64,
    /// The largest resident set the process has had, in bytes.
    pub max_resident_bytes: u64,
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
    /// Process figures.
    pub process: Option<ProcessFigures>,
}
