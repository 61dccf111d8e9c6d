//! Raft storage: the fjall log store, the plugin-backed state machine and its snapshots.
//!
//! - `log/`: [`FjallLogStore`] keeps the log and the vote in keyspaces `raft.log`/`raft.meta`;
//!   appends share fsyncs (group commit) and are reported flushed only once on disk.
//! - `apply/`: [`StateMachineStore`] applies committed entries through the state-machine plugin,
//!   one wasm call per run of commands and one atomic commit (data + applied position) per apply
//!   call; deploys and rollbacks are activated at their index (`apply/activate.rs`).
//! - `snapshot/`: checksummed files streamed in and out (`tokio::fs::File`), built from a fjall
//!   snapshot while applies continue, and installed by loading a fresh keyspace generation that
//!   is switched to in one batch.
//!
//! Every storage error is fatal: openraft stops the raft core and the node recovers from disk.

pub(crate) mod apply;
mod codec;
mod error;
pub(crate) mod log;
mod shared_raft;
pub(crate) mod snapshot;
mod storage;

pub use apply::StateMachineStore;
pub use error::{RaftStorageError, SnapshotFormatError};
pub use log::FjallLogStore;
pub use shared_raft::SharedRaft;
pub use snapshot::{PluginSnapshotBuilder, verify_snapshot};
pub use storage::RaftStorage;
