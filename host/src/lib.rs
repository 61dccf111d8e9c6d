//! iroh-raft: a Raft node whose behaviour is defined by WebAssembly.
//!
//! This crate is the host: the plugin runtime that runs state-machine components over a durable
//! fjall keyspace, and the bundled plugins. See the repository README for the whole picture.
//!
//! ```no_run
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use iroh_raft::{AppliedMark, FjallStateStore, PluginEngine, PluginLimits, bundled};
//!
//! # fn main() -> anyhow::Result<()> {
//! let db = fjall::Database::builder("/tmp/iroh-raft-doc").open()?;
//! let state = Arc::new(FjallStateStore::open(&db, "counter", None)?);
//! let engine = PluginEngine::new(None)?;
//! let counter = engine.load_state_machine("counter", bundled::COUNTER)?;
//! let mut applier = counter.applier(state.clone(), PluginLimits::default())?;
//! let add_two = Bytes::from(postcard::to_allocvec(&2i64)?);
//! let outcomes = applier.apply(1, &[add_two.clone(), add_two])?;
//! applier.commit(&AppliedMark { index: 2, extra: Vec::new() })?;
//! assert_eq!(postcard::from_bytes::<i64>(outcomes[1].as_ref().unwrap())?, 4);
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod bundled;
mod client;
pub mod events;
pub mod metrics;
mod mgmt_client;
mod net;
mod node;
mod plugin;
mod raft;
mod store;

pub use client::{Client, ClientError, EventStream, Progress};
pub use mgmt_client::IrohRaftManagementClient;
pub use net::{
    Admission, ClientFrame, ClusterStatus, Consistency, DeployRequest, FrameError, HealthStatus,
    JoinReply, JoinRequest, JoinTicket, LeadershipResponse, LogEntryInfo, LogEntryKind, LogInfo,
    MAX_PLUGIN_CONFIG, ManagementServer, ManagementService, MemberHealth, MemberOperationResponse,
    MemberStatus, NOT_A_MEMBER, NetError, NodeStatus, Operation, PeerClient, RaftNetwork, RaftRole,
    RaftServer, Reply, RequestError, RequestId, ServerFrame, SnapshotInfo, TicketError,
    UPLOAD_CHUNK, alpn, bind_endpoint, decode_body, encode_frame, format_node_address,
    load_or_create_secret_key, parse_node_address, read_frame, write_frame,
};
pub use node::{ClusterIdentity, Node, NodeConfig, NodeError, Start};
pub use plugin::{
    Activation, ActivationCause, CompiledStateMachine, ComponentInfo, DeployDecision, EntryError,
    EntryOutcome, HISTORY_LIMIT, KindPlugins, MAX_PLUGIN_BYTES, PluginEngine, PluginError,
    PluginKind, PluginLimits, PluginRecord, PluginRegistry, ROLLBACK_DEPTH, RollbackRefused,
    RuntimeError, StateMachineApplier, StateMachineReader, sha256, sha256_hex,
};
pub use raft::{
    ApplyResponse, CONFIG_FIELDS, ClusterConfig, ConfigError, DeployEntry, FjallLogStore,
    LogPayload, Member, PluginOutcome, PluginSnapshotBuilder, RaftStorage, RaftStorageError,
    SharedRaft, SnapshotFormatError, StateMachineStore, TypeConfig, verify_snapshot,
};
pub use store::{
    AppliedMark, FjallStateStore, Pairs, PluginBlobs, StateRead, StateStore, StoreError, Txn,
    WriteSet,
};
