//! The plugin runtime: one wasmtime [`PluginEngine`] per node, component validation against the
//! WIT worlds, an on-disk cache of compiled components, and the state-machine host that runs a
//! batch of entries through one packed wasm call, the access policy's host (`policy.rs`) and the
//! backup handler's (`backup.rs`, writing through `blob_dir.rs`).
//!
//! Plugins see only the host interfaces their world grants (`kv` and `log` for a state machine):
//! no WASI, no clock, no randomness. Fuel and memory are budgeted per entry (the SDK marks entry
//! boundaries through the `entry` interface), so an entry's outcome depends only on the entry and
//! the state before it, and every replica fails the same entry the same way.

mod applier;
mod backup;
mod bindings;
mod blob_dir;
mod compiled;
mod engine;
mod entry_host;
mod error;
mod host_state;
mod kv_fuel;
mod kv_host;
mod log_host;
mod memory;
mod payload;
mod policy;
mod reader;
mod trap;
mod validate;
mod world;

pub use applier::{EntryOutcome, StateMachineApplier};
pub use backup::{BackupError, BackupSession, CompiledBackup};
pub(crate) use blob_dir::BlobDir;
pub use compiled::CompiledStateMachine;
pub use engine::PluginEngine;
pub use error::{PluginError, RuntimeError};
pub use policy::{CachedPolicy, CompiledPolicy, Decision, PolicyInstance};
pub use reader::StateMachineReader;
pub use trap::EntryError;
pub use validate::ComponentInfo;
