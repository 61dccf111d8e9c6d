//! A node's figures, by category: raft, storage, network, plugin and management. One builder
//! ([`collect`]) makes the typed snapshot every consumer reads: the management protocol's
//! `GetMetrics` today, the metrics protocol later.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::net::RaftRole;

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

/// Counters the management server keeps.
#[derive(Debug, Default)]
pub struct ManagementCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    forwarded: AtomicU64,
    subscribers: AtomicU64,
}

impl ManagementCounters {
    /// Counts an answered request.
    pub fn answered(&self, ok: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request forwarded to the leader.
    pub fn forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a subscription opening (`true`) or closing.
    pub fn subscription(&self, open: bool) {
        if open {
            self.subscribers.fetch_add(1, Ordering::Relaxed);
        } else {
            self.subscribers.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn figures(&self) -> ManagementFigures {
        ManagementFigures {
            requests: self.requests.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            forwarded: self.forwarded.load(Ordering::Relaxed),
            subscribers: self.subscribers.load(Ordering::Relaxed),
        }
    }
}

/// Where the figures come from.
pub(crate) struct Sources<'a> {
    pub(crate) node_id: u64,
    pub(crate) raft: RaftFigures,
    pub(crate) database_dir: &'a Path,
    pub(crate) snapshot_bytes: u64,
    pub(crate) endpoint: &'a iroh::Endpoint,
    pub(crate) plugin: PluginFigures,
    pub(crate) management: &'a ManagementCounters,
}

/// The snapshot of `categories` (every category when empty).
pub(crate) fn collect(categories: &[MetricsCategory], sources: Sources<'_>) -> MetricsSnapshot {
    let wanted = |c: MetricsCategory| categories.is_empty() || categories.contains(&c);
    let socket = &sources.endpoint.metrics().socket;
    MetricsSnapshot {
        node_id: sources.node_id,
        raft: wanted(MetricsCategory::Raft).then_some(sources.raft),
        storage: wanted(MetricsCategory::Storage).then(|| StorageFigures {
            database_bytes: dir_size(sources.database_dir),
            snapshot_bytes: sources.snapshot_bytes,
        }),
        network: wanted(MetricsCategory::Network).then(|| NetworkFigures {
            connections_opened: socket.num_conns_opened.get(),
            connections_closed: socket.num_conns_closed.get(),
            bytes_sent: socket.send_ipv4.get() + socket.send_ipv6.get(),
            bytes_received: socket.recv_data_ipv4.get() + socket.recv_data_ipv6.get(),
        }),
        plugin: wanted(MetricsCategory::Plugin).then_some(sources.plugin),
        management: wanted(MetricsCategory::Management).then(|| sources.management.figures()),
    }
}

/// Bytes the files under `dir` take (0 for a missing directory).
pub(crate) fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => dir_size(&entry.path()),
            Ok(_) => entry.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_parse_their_own_names() {
        for category in MetricsCategory::ALL {
            assert_eq!(category.as_str().parse::<MetricsCategory>(), Ok(category));
        }
        assert!(
            "disk"
                .parse::<MetricsCategory>()
                .unwrap_err()
                .contains("storage")
        );
    }

    #[test]
    fn counters_count() {
        let counters = ManagementCounters::default();
        counters.answered(true);
        counters.answered(false);
        counters.forwarded();
        counters.subscription(true);
        counters.subscription(true);
        counters.subscription(false);
        assert_eq!(
            counters.figures(),
            ManagementFigures {
                requests: 2,
                errors: 1,
                forwarded: 1,
                subscribers: 1
            }
        );
    }

    #[test]
    fn dir_size_adds_up_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("y"), [0u8; 23]).unwrap();
        assert_eq!(dir_size(dir.path()), 123);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
    }
}
