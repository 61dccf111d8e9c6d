//! Durable storage for the state machine's keyspace: the [`StateStore`] trait the plugin runtime
//! writes through, its fjall implementation, and the in-memory transaction that layers an apply
//! batch's writes over the committed state. A whole keyspace can be exported at one instant and
//! replaced atomically, which is what raft snapshots are built from and installed with.
//!
//! The raft log store lives elsewhere; this module owns only state-machine data and its applied
//! marker.

mod change;
mod change_history;
mod error;
mod fjall_read;
mod fjall_state;
mod plugin_blobs;
mod state_export;
mod state_import;
mod state_store;
mod txn;
mod write_set;

mod memory;

pub use change::{Change, EntryChanges};
pub use error::StoreError;
pub use fjall_state::FjallStateStore;
pub(crate) use memory::{database_options, keyspace_options};
pub use plugin_blobs::PluginBlobs;
pub(crate) use state_export::StateExport;
pub(crate) use state_import::StateImport;
pub use state_store::{AppliedMark, Pairs, StateRead, StateStore};
pub use txn::Txn;
pub use write_set::WriteSet;
