//! How much memory fjall may hold. Its defaults (a 64 MiB memtable per keyspace and a 32 MiB
//! block cache) let a node grow to hundreds of MiB under a
//! sustained write load; a raft node rewrites its log keyspace constantly (appends, then purge
//! tombstones), so small memtables that flush often cost little.

use fjall::{DatabaseBuilder, KeyspaceCreateOptions};

/// Largest memtable of one keyspace before it is sealed and flushed. (fjall 3.1 accepts a cap on
/// all write buffers together, `max_write_buffer_size`, but ignores it, so the per-keyspace cap is
/// what bounds them.)
const MEMTABLE_BYTES: u64 = 8 << 20;
/// Block cache shared by all keyspaces.
const CACHE_BYTES: u64 = 16 << 20;

/// Database options for a node.
pub(crate) fn database_options(
    builder: DatabaseBuilder<fjall::Database>,
) -> DatabaseBuilder<fjall::Database> {
    builder.cache_size(CACHE_BYTES)
}

/// Options for every keyspace a node creates.
pub(crate) fn keyspace_options() -> KeyspaceCreateOptions {
    KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)
}
