//! The data a plugin's wasmtime `Store` carries: what the `kv` interface may touch during the
//! current call, the resource table, and the memory cap.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, Store};

use crate::proto::PluginLimits;
use crate::store::{StateRead, StateStore, StoreError, Txn};

/// What the keyspace looks like to the plugin during the current call.
pub(crate) enum Access {
    /// Between calls: `kv` traps.
    Closed,
    /// Inside `apply`/`migrate`: reads and writes go through the transaction over this state.
    Apply(Arc<dyn StateStore>),
    /// Inside `query`: reads from a snapshot; writes trap.
    Query(Box<dyn StateRead>),
}

/// Per-store host state.
pub(crate) struct HostState {
    pub(crate) plugin: Arc<str>,
    pub(crate) access: Access,
    pub(crate) txn: Txn,
    pub(crate) table: ResourceTable,
    pub(crate) memory: MemoryCap,
    /// A storage failure hit during a host call. The call traps and the runtime reports this
    /// instead of blaming the entry.
    pub(crate) storage_fault: Option<StoreError>,
    /// Key and value limits of `kv.put`.
    pub(crate) limits: PluginLimits,
    /// Bytes passed to `kv.put` during the current call, and how many it may pass.
    pub(crate) written: u64,
    pub(crate) write_budget: u64,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<str>, access: Access, limits: &PluginLimits) -> Self {
        Self {
            plugin,
            access,
            txn: Txn::default(),
            table: ResourceTable::new(),
            memory: MemoryCap {
                max_bytes: limits.memory_bytes,
            },
            storage_fault: None,
            limits: *limits,
            written: 0,
            write_budget: limits.max_entry_write_bytes,
        }
    }

    /// Starts a call that may pass `write_budget` bytes to `kv.put`.
    pub(crate) fn begin_call(&mut self, write_budget: u64) {
        self.written = 0;
        self.write_budget = write_budget;
    }

    /// Records a storage failure and turns it into a trap for the guest.
    pub(crate) fn storage_trap(&mut self, error: StoreError) -> wasmtime::Error {
        let message = format!("host storage failure: {error}");
        self.storage_fault = Some(error);
        wasmtime::Error::msg(message)
    }
}

/// The guest tried to grow its memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error(
    "out of memory: the plugin tried to grow its memory to {desired} bytes, over its limit of {limit} bytes"
)]
pub(crate) struct MemoryLimitExceeded {
    pub(crate) desired: usize,
    pub(crate) limit: usize,
}

/// An entry passed more bytes to `kv.put` than the cluster's `max_entry_write_bytes`.
#[derive(Debug, thiserror::Error)]
#[error(
    "the entry passed {written} bytes to kv.put, over the cluster's max_entry_write_bytes of {limit}; its writes were dropped"
)]
pub(crate) struct WriteBudgetExceeded {
    pub(crate) written: u64,
    pub(crate) limit: u64,
}

/// Caps linear memory; exceeding the cap traps at that exact allocation on every replica.
pub(crate) struct MemoryCap {
    max_bytes: usize,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired,
                limit: self.max_bytes,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; a plugin that needs more than this is broken.
        Ok(desired <= 1 << 20)
    }
}

/// A store for one plugin instance, with the memory cap installed.
pub(crate) fn new_store(engine: &wasmtime::Engine, state: HostState) -> Store<HostState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    store
}
