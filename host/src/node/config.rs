//! Node configuration: where it keeps its data, where it listens, raft timing and plugin budgets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::PluginLimits;

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Data directory: identity, raft log, state, snapshots, compiled plugins.
    pub data_dir: PathBuf,
    /// The address the endpoint binds (port 0 picks a free port).
    pub bind: SocketAddr,
    /// Leader heartbeat interval.
    pub heartbeat: Duration,
    /// Election timeout range; a follower that hears nothing for a random time in it stands.
    pub election_timeout: (Duration, Duration),
    /// Take a snapshot after this many applied entries since the last one.
    pub snapshot_every: u64,
    /// Entries kept in the log behind the last snapshot (for slow followers).
    pub keep_after_snapshot: u64,
    /// Plugin fuel and memory budgets.
    pub limits: PluginLimits,
}

impl NodeConfig {
    /// Defaults for a node keeping its data in `data_dir` and listening on `bind`.
    pub fn new(data_dir: impl Into<PathBuf>, bind: SocketAddr) -> Self {
        Self {
            data_dir: data_dir.into(),
            bind,
            heartbeat: Duration::from_millis(100),
            election_timeout: (Duration::from_millis(500), Duration::from_millis(1000)),
            snapshot_every: 100_000,
            keep_after_snapshot: 5_000,
            limits: PluginLimits::default(),
        }
    }

    /// The openraft configuration these settings make.
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, super::NodeError> {
        let config = openraft::Config {
            cluster_name: "iroh-raft".into(),
            heartbeat_interval: self.heartbeat.as_millis() as u64,
            election_timeout_min: self.election_timeout.0.as_millis() as u64,
            election_timeout_max: self.election_timeout.1.as_millis() as u64,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            enable_pre_vote: Some(true),
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| super::NodeError::Config(e.to_string()))
    }
}
