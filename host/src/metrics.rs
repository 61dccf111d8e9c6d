//! A node's figures, by category: raft, storage, network, plugin and management. One builder
//! ([`collect`]) makes the typed snapshot every consumer reads: the management protocol's
//! `GetMetrics` today, the metrics protocol later.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::proto::{
    ManagementFigures, MetricsCategory, MetricsSnapshot, NetworkFigures, PluginFigures,
    RaftFigures, StorageFigures, op,
};

/// Counters the management server keeps.
#[derive(Debug, Default)]
pub(crate) struct ManagementCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    forwarded: AtomicU64,
    subscribers: AtomicU64,
    /// Denials by operation, in the order of [`op::ALL`].
    denied: [AtomicU64; op::ALL.len()],
}

impl ManagementCounters {
    /// Counts an answered request.
    pub(crate) fn answered(&self, ok: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request the access policy refused.
    pub(crate) fn denied(&self, operation: &str) {
        if let Some(slot) = op::ALL.iter().position(|name| *name == operation) {
            self.denied[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts a request forwarded to the leader.
    pub(crate) fn forwarded(&self) {
        self.forwarded.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a subscription opening (`true`) or closing.
    pub(crate) fn subscription(&self, open: bool) {
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
            denied: op::ALL
                .iter()
                .zip(&self.denied)
                .map(|(name, count)| (name.to_string(), count.load(Ordering::Relaxed)))
                .filter(|(_, count)| *count > 0)
                .collect(),
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
        counters.denied(op::DATA_WRITE);
        counters.denied(op::DATA_WRITE);
        counters.denied("not-an-operation");
        assert_eq!(
            counters.figures(),
            ManagementFigures {
                requests: 2,
                errors: 1,
                forwarded: 1,
                subscribers: 1,
                denied: vec![(op::DATA_WRITE.to_string(), 2)],
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
