//! Applying committed entries: openraft's state machine over the plugin ([`StateMachineStore`]),
//! the planning of an apply call into steps (`batch.rs`), the replicated applied state, and the
//! activation of plugin deploys and rollbacks at their index (`activate.rs`), and the state
//! hashes replicas compare at capture points (`check_points.rs`, `captures.rs`, `state_hash.rs`),
//! and backup restores (`restore.rs`).

pub(crate) mod activate;
pub(crate) mod applied_state;
pub(crate) mod batch;
pub(crate) mod captures;
pub(crate) mod check_points;
mod commands;
mod recent_answers;
pub(crate) mod restore;
pub(crate) mod sessions;
pub(crate) mod state_hash;
mod state_machine_store;
mod stored_plugins;

pub use state_machine_store::StateMachineStore;
