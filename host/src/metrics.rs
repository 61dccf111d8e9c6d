//! A node's figures, by category: raft, storage, network, plugin, management and process. One builder
//! ([`collect`]) makes the typed snapshot every consumer reads: the metrics protocol
//! (`iroh-raft-metrics/0`), the management protocol's `GetMetrics`, and the Prometheus exposition
//! ([`prometheus`]). The recorders the hot paths call into live here too, one type per file:
//! [`LatencyRecorder`] (histograms), [`ManagementCounters`], [`NetworkCounters`] (per ALPN and per
//! peer), [`ApplyRecorder`] (the applier) and [`RaftRecorder`] (proposals, elections).

mod latency;
mod management;
mod network;
mod plugin_recorder;
mod process;
pub(crate) mod prometheus;
mod raft_recorder;

use std::path::Path;
use std::time::SystemTime;

pub(crate) use latency::LatencyRecorder;
pub(crate) use management::ManagementCounters;
pub(crate) use network::NetworkCounters;
pub(crate) use plugin_recorder::ApplyRecorder;
pub(crate) use raft_recorder::{RaftRecorder, watch_elections};

use crate::proto::{
    KeyspaceFigures, LatencyHistogram, MetricsCategory, MetricsSnapshot, NetworkFigures,
    PluginFigures, RaftFigures, StorageFigures,
};

/// Where the storage figures come from.
pub(crate) struct StorageSources<'a> {
    /// The fjall database directory.
    pub(crate) database_dir: &'a Path,
    /// The database itself, for its keyspaces.
    pub(crate) database: &'a fjall::Database,
    /// The raft log keyspace's bytes on disk.
    pub(crate) log_bytes: u64,
    /// The current snapshot's file (absent before the first snapshot).
    pub(crate) snapshot_file: &'a Path,
    /// The fsync histogram and the appends the fsyncs made durable.
    pub(crate) fsync: (LatencyHistogram, u64),
}

/// Where the figures come from. The raft and plugin figures are cheap and built by the caller;
/// the others are read here only if their category is wanted.
pub(crate) struct Sources<'a> {
    pub(crate) node_id: u64,
    pub(crate) raft: RaftFigures,
    pub(crate) storage: StorageSources<'a>,
    pub(crate) endpoint: &'a iroh::Endpoint,
    pub(crate) network: &'a NetworkCounters,
    pub(crate) plugin: PluginFigures,
    pub(crate) management: &'a ManagementCounters,
}

/// The snapshot of `categories` (every category when empty).
pub(crate) fn collect(categories: &[MetricsCategory], sources: Sources<'_>) -> MetricsSnapshot {
    let wanted = |c: MetricsCategory| categories.is_empty() || categories.contains(&c);
    MetricsSnapshot {
        node_id: sources.node_id,
        raft: wanted(MetricsCategory::Raft).then_some(sources.raft),
        storage: wanted(MetricsCategory::Storage).then(|| storage(&sources.storage)),
        network: wanted(MetricsCategory::Network).then(|| {
            let socket = &sources.endpoint.metrics().socket;
            NetworkFigures {
                connections_opened: socket.num_conns_opened.get(),
                connections_closed: socket.num_conns_closed.get(),
                bytes_sent: socket.send_ipv4.get() + socket.send_ipv6.get(),
                bytes_received: socket.recv_data_ipv4.get() + socket.recv_data_ipv6.get(),
                protocols: sources.network.protocols(),
                peers: sources.network.peers(),
            }
        }),
        plugin: wanted(MetricsCategory::Plugin).then_some(sources.plugin),
        management: wanted(MetricsCategory::Management).then(|| sources.management.figures()),
        process: wanted(MetricsCategory::Process).then(process::figures),
    }
}

fn storage(sources: &StorageSources<'_>) -> StorageFigures {
    let snapshot = std::fs::metadata(sources.snapshot_file).ok();
    let (fsync_latency, appends_synced) = sources.fsync.clone();
    StorageFigures {
        database_bytes: dir_size(sources.database_dir),
        log_bytes: sources.log_bytes,
        keyspaces: keyspace_sizes(sources.database),
        snapshot_bytes: snapshot.as_ref().map_or(0, |m| m.len()),
        snapshot_age_secs: snapshot
            .and_then(|m| m.modified().ok())
            .and_then(|written| SystemTime::now().duration_since(written).ok())
            .map(|age| age.as_secs()),
        fsync_latency,
        appends_synced,
    }
}

/// Bytes each keyspace of `database` takes on disk, by name.
fn keyspace_sizes(database: &fjall::Database) -> Vec<KeyspaceFigures> {
    let mut sizes: Vec<KeyspaceFigures> = database
        .list_keyspace_names()
        .into_iter()
        .filter_map(|name| {
            let name = name.to_string();
            // Opening a keyspace that exists hands out its handle; nothing is created.
            let keyspace = database
                .keyspace(&name, crate::store::keyspace_options)
                .ok()?;
            Some(KeyspaceFigures {
                bytes: keyspace.disk_space(),
                name,
            })
        })
        .collect();
    sizes.sort_by(|a, b| a.name.cmp(&b.name));
    sizes
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
    fn dir_size_adds_up_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("a")).unwrap();
        std::fs::write(dir.path().join("a/x"), [0u8; 100]).unwrap();
        std::fs::write(dir.path().join("y"), [0u8; 23]).unwrap();
        assert_eq!(dir_size(dir.path()), 123);
        assert_eq!(dir_size(&dir.path().join("missing")), 0);
    }

    #[test]
    fn keyspaces_are_listed_with_their_size() {
        let dir = tempfile::tempdir().unwrap();
        let database = fjall::Database::builder(dir.path()).open().unwrap();
        let data = database
            .keyspace("b.data", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        database
            .keyspace("a.meta", fjall::KeyspaceCreateOptions::default)
            .unwrap();
        for i in 0..1000u32 {
            data.insert(i.to_be_bytes(), [7u8; 100]).unwrap();
        }
        data.rotate_memtable_and_wait().unwrap();
        let sizes = keyspace_sizes(&database);
        let names: Vec<&str> = sizes.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["a.meta", "b.data"]);
        assert_eq!(sizes[0].bytes, 0);
        assert!(sizes[1].bytes > 1000, "{sizes:?}");
    }
}
