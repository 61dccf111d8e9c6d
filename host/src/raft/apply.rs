//! Applying committed entries: openraft's state machine over the plugin ([`StateMachineStore`]),
//! the planning of an apply call into steps (`batch.rs`), the replicated applied state, and the
//! activation of plugin deploys and rollbacks at their index (`activate.rs`).

pub(crate) mod activate;
pub(crate) mod applied_state;
pub(crate) mod batch;
mod commands;
pub(crate) mod sessions;
mod state_machine_store;

pub use state_machine_store::StateMachineStore;
