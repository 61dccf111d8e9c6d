//! Snapshots: the checksummed file format, the builder that streams one from a fjall snapshot,
//! the store that keeps the current one, installing a received one, verifying a file, and the
//! image writer both snapshots and backups use.

pub(crate) mod builder;
pub(crate) mod format;
pub(crate) mod image;
pub(crate) mod install;
pub(crate) mod store;
pub(crate) mod summary;
mod verify;

pub use builder::PluginSnapshotBuilder;
pub use verify::verify_snapshot;
