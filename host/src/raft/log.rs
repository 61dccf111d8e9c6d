//! The raft log in fjall: entries, the vote and the purge point, with concurrent appends sharing
//! one fsync (group commit).

mod append_budget;
pub(crate) mod group_commit;
mod log_store;

pub use log_store::FjallLogStore;
