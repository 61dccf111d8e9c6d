//! Per-call budgets. They are part of the replicated configuration: every replica must use the same
//! values, or a heavy entry could fail on one replica and succeed on another.

use serde::{Deserialize, Serialize};

/// Fuel and memory budgets for plugin calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginLimits {
    /// Fuel (roughly, wasm instructions) each entry of an apply batch may burn: the host sets
    /// exactly this at every entry boundary, so an entry's budget does not depend on its batch.
    pub fuel_per_entry: u64,
    /// Fuel one query may burn.
    pub fuel_per_query: u64,
    /// Fuel a `migrate` call may burn.
    pub fuel_per_migration: u64,
    /// Memory one entry may allocate (its arena during `apply`), and what a query or `migrate`
    /// instance may grow to, in bytes. During `apply` the instance holds the plugin's initial
    /// memory, this arena and the batch.
    pub memory_bytes: usize,
    /// Longest key `kv.put` accepts (fjall's own hard limit is 65,535 bytes).
    pub max_key_bytes: u64,
    /// Largest value `kv.put` accepts.
    pub max_value_bytes: u64,
    /// Bytes (keys plus values) one entry may pass to `kv.put`, refused or not: past it the entry
    /// traps and its writes are dropped. Bounds the host memory and copying one entry can cause.
    pub max_entry_write_bytes: u64,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            // An entry's command is copied into its arena at about one unit of fuel per byte, so
            // a 16 MiB value needs 16 M of it; a runaway entry still stops within a second.
            fuel_per_entry: 100_000_000,
            fuel_per_query: 100_000_000,
            fuel_per_migration: 10_000_000_000,
            memory_bytes: 64 << 20,
            max_key_bytes: 4 << 10,
            max_value_bytes: 16 << 20,
            max_entry_write_bytes: 64 << 20,
        }
    }
}
