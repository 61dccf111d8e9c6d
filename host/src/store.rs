//! Durable storage for the state machine's keyspace: the [`StateStore`] trait the plugin runtime
//! writes through, its fjall implementation, and the in-memory transaction that layers an apply
//! batch's writes over the committed state.
//!
//! The raft log store lives elsewhere; this module owns only state-machine data and its applied
//! marker.

mod error;
mod fjall_state;
mod state_store;
mod txn;

pub use error::StoreError;
pub use fjall_state::FjallStateStore;
pub use state_store::{AppliedMark, Pairs, StateRead, StateStore};
pub use txn::{Txn, WriteSet};
