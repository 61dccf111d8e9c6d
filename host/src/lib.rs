//! iroh-raft: a Raft node whose behaviour is defined by WebAssembly.
//!
//! This crate is the host: a [`Node`] runs raft (openraft) over fjall storage and serves the four
//! QUIC protocols on one iroh endpoint; [`Client`] and [`IrohRaftManagementClient`] talk to it;
//! [`PluginEngine`] runs the WIT-defined state-machine, policy and backup components. Everything
//! that crosses the wire is in [`proto`]; sockets and servers in [`net`]; the storage layer (for
//! embedding it or testing against it) in [`storage`]. See the repository README and
//! `ARCHITECTURE.md` for the whole picture.
//!
//! ```no_run
//! use std::sync::Arc;
//! use bytes::Bytes;
//! use iroh_raft::proto::PluginLimits;
//! use iroh_raft::storage::{AppliedMark, FjallStateStore};
//! use iroh_raft::{PluginEngine, bundled};
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
mod consistency;
pub mod events;
mod hash;
pub mod log_limit;
mod metrics;
mod metrics_client;
mod mgmt_client;
pub mod net;
mod node;
mod plugin;
pub mod proto;
mod raft;
mod store;
mod user_key;
mod watch;
mod write_session;

#[cfg(test)]
mod layout_tests;

pub use client::{Client, ClientError, EventStream, Progress, WatchStream};
pub use consistency::{ConsistencyReport, MemberHash, Verdict, common_index, decide};
pub use hash::{sha256, sha256_hex};
pub use metrics::prometheus::{CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE, render as prometheus_text};
pub use metrics_client::{MetricsClient, MetricsSubscription};
pub use mgmt_client::IrohRaftManagementClient;
pub use net::{NetError, format_node_address, parse_node_address};
pub use node::{
    ClusterIdentity, InitialPolicy, Node, NodeConfig, NodeError, OfflineRestore,
    RESTORE_UNFINISHED, Start, restore_offline,
};
pub use plugin::{
    BackupError, BackupSession, CachedPolicy, CompiledBackup, CompiledPolicy, CompiledStateMachine,
    ComponentInfo, Decision, EntryError, EntryOutcome, PluginEngine, PluginError, PolicyInstance,
    RuntimeError, StateMachineApplier, StateMachineReader,
};
pub use raft::RaftStorageError;
pub use raft::snapshot::summary::{ImageSummary, inspect_image};
pub use store::StoreError;
pub use user_key::{KEY_ENV, default_user_key_path, load_user_key};
pub use watch::{WatchFeed, Watched};

/// The storage layer underneath a node: openraft's log store and state machine over fjall, the
/// state-machine keyspace and its transactions, snapshots. A [`Node`] sets all of this up; use it
/// directly to embed raft differently or to test against the store.
pub mod storage {
    pub use crate::raft::{
        FjallLogStore, PluginSnapshotBuilder, RaftStorage, RaftStorageError, SharedRaft,
        SnapshotFormatError, StateMachineStore, verify_snapshot,
    };
    pub use crate::store::{
        AppliedMark, Change, EntryChanges, FjallStateStore, Pairs, PluginBlobs, StateRead,
        StateStore, StoreError, Txn, WriteSet,
    };
}
