//! Raft storage: the type configuration, the fjall log store, the plugin-backed state machine and
//! its snapshots.
//!
//! - [`FjallLogStore`] keeps the log and the vote in keyspaces `raft.log`/`raft.meta`; appends
//!   share fsyncs (group commit) and are reported flushed only once on disk.
//! - [`StateMachineStore`] applies committed entries through the state-machine plugin, one wasm
//!   call per run of commands and one atomic commit (data + applied position) per apply call.
//! - Snapshots are checksummed files streamed in and out (`tokio::fs::File`), built from a fjall
//!   snapshot while applies continue, and installed by loading a fresh keyspace generation that is
//!   switched to in one batch.
//!
//! Every storage error is fatal: openraft stops the raft core and the node recovers from disk.

mod applied_state;
mod apply_batch;
mod cluster_config;
mod codec;
mod deploy;
mod error;
mod group_commit;
mod log_store;
mod shared_raft;
mod snapshot_builder;
mod snapshot_format;
mod snapshot_install;
mod snapshot_store;
mod snapshot_verify;
mod state_machine;
mod storage;
mod types;

pub use cluster_config::{CONFIG_FIELDS, ClusterConfig, ConfigError};
pub use error::{RaftStorageError, SnapshotFormatError};
pub use log_store::FjallLogStore;
pub use shared_raft::SharedRaft;
pub use snapshot_builder::PluginSnapshotBuilder;
pub use snapshot_verify::verify_snapshot;
pub use state_machine::StateMachineStore;
pub use storage::RaftStorage;
pub use types::{ApplyResponse, DeployEntry, LogPayload, Member, PluginOutcome, TypeConfig};
