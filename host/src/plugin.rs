//! The plugin runtime: one wasmtime [`PluginEngine`] per node, component validation against the
//! WIT worlds, an on-disk cache of compiled components, and the state-machine host that runs a
//! batch of entries through one packed wasm call.
//!
//! Plugins see only the host interfaces their world grants (`kv` and `log` for a state machine):
//! no WASI, no clock, no randomness. Fuel and memory are capped per call, deterministically, so
//! every replica fails the same entry the same way.

mod bindings;
mod engine;
mod error;
mod host_state;
mod kind;
mod kv_host;
mod limits;
mod log_host;
mod payload;
mod reader;
mod registry;
mod state_machine;
mod trap;
mod validate;

pub use engine::{CompiledStateMachine, PluginEngine};
pub use error::{PluginError, RuntimeError};
pub use kind::PluginKind;
pub use limits::PluginLimits;
pub use reader::StateMachineReader;
pub use registry::{
    Activation, ActivationCause, DeployDecision, HISTORY_LIMIT, KindPlugins, MAX_PLUGIN_BYTES,
    PluginRecord, PluginRegistry, ROLLBACK_DEPTH, RollbackRefused,
};
pub use state_machine::{EntryOutcome, StateMachineApplier};
pub use trap::EntryError;
pub use validate::{ComponentInfo, sha256, sha256_hex};
