//! Node configuration: where it keeps its data, where it listens, raft timing and plugin budgets.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;

use crate::net::LinkFaults;
use crate::proto::{ClusterConfig, PluginLimits};

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
    /// The state-machine component (`.wasm` bytes) a new cluster starts with: `--init` proposes
    /// it through the log, so every replica runs exactly these bytes, and a node runs it until its
    /// log names one. The bundled kv plugin by default; a node built with another toolchain has
    /// other bytes here, and runs the log's all the same.
    pub initial_state_machine: Bytes,
    /// The access policy a new cluster starts with (`--init` proposes it through the log).
    pub initial_policy: InitialPolicy,
    /// The break-glass identities a new cluster names besides this node's own key (the CLI puts
    /// the user who runs `--init` here): they may always read status and deploy a new policy,
    /// and the bundled `rbac` policy makes them `Admin`.
    pub root_identities: Vec<iroh::EndpointId>,
    /// Serve `GET /metrics` (Prometheus text) over plain HTTP on this address (`--metrics-http`).
    /// Not access-controlled: bind it where only trusted scrapers reach. Off when `None`.
    pub metrics_http: Option<SocketAddr>,
    /// The directory this node's backup handler keeps backups in (`--backup-dir`): the handler
    /// reaches nothing outside it. `None`: backups are refused on this node.
    pub backup_dir: Option<PathBuf>,
    /// Faults injected into the raft messages this node sends, for tests of lost, delayed and
    /// cut links and of a paused node (see [`LinkFaults`]). None by default; keep a clone to
    /// change them while the node runs.
    pub link_faults: LinkFaults,
}

/// The access policy a new cluster starts with.
#[derive(Debug, Clone, Default)]
pub enum InitialPolicy {
    /// The bundled `rbac` policy, with the root identities and the first node's key as `Admin`
    /// and every other caller denied.
    #[default]
    Rbac,
    /// The bundled `allow-all` policy: every caller may do everything (development only; every
    /// node warns at start).
    AllowAll,
    /// A policy component and the configuration it is deployed with.
    Component {
        /// The `.wasm` bytes.
        wasm: Bytes,
        /// Its `policy-config` blob.
        config: Bytes,
    },
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
            initial_state_machine: Bytes::from_static(crate::bundled::KV),
            initial_policy: InitialPolicy::default(),
            root_identities: Vec::new(),
            metrics_http: None,
            backup_dir: None,
            link_faults: LinkFaults::default(),
        }
    }

    /// The cluster configuration these settings make: what a new cluster starts with (`--init`
    /// replicates it as version 1), and what a node uses until its first configuration applies.
    pub fn cluster_config(&self) -> ClusterConfig {
        ClusterConfig {
            version: 0,
            heartbeat_interval_ms: self.heartbeat.as_millis() as u64,
            election_timeout_min_ms: self.election_timeout.0.as_millis() as u64,
            election_timeout_max_ms: self.election_timeout.1.as_millis() as u64,
            snapshot_every: self.snapshot_every,
            keep_after_snapshot: self.keep_after_snapshot,
            limits: self.limits,
            ..ClusterConfig::default()
        }
    }
}
