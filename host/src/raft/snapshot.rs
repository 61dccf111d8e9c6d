//! Snapshots: the checksummed file format, the builder that streams one from a fjall snapshot,
//! the store that keeps the current one, installing a received one, and verifying a file.

pub(crate) mod builder;
pub(crate) mod format;
pub(crate) mod install;
pub(crate) mod store;
mod verify;

pub use builder::PluginSnapshotBuilder;
pub use verify::verify_snapshot;
