//! The data a plugin's wasmtime `Store` carries: what the `kv` interface may touch during the
//! current call, the resource table, the memory cap and the entry boundaries of an `apply` call.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::ResourceTable;

use super::entry_host::EntryCall;
use super::memory::MemoryCap;

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
    /// Bytes passed to `kv.put` by the current entry (or call), and how many it may pass.
    pub(crate) written: u64,
    pub(crate) write_budget: u64,
    /// The entry boundaries of the `apply` call in progress.
    pub(crate) call: EntryCall,
}

impl HostState {
    pub(crate) fn new(plugin: Arc<str>, access: Access, limits: &PluginLimits) -> Self {
        Self {
            plugin,
            access,
            txn: Txn::default(),
            table: ResourceTable::new(),
            memory: MemoryCap::new(limits.memory_bytes),
            storage_fault: None,
            limits: *limits,
            written: 0,
            write_budget: limits.max_entry_write_bytes,
            call: EntryCall::default(),
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

/// An entry passed more bytes to `kv.put` than the cluster's `max_entry_write_bytes`.
#[derive(Debug, thiserror::Error)]
#[error(
    "the entry passed {written} bytes to kv.put, over the cluster's max_entry_write_bytes of {limit}; its writes were dropped"
)]
pub(crate) struct WriteBudgetExceeded {
    pub(crate) written: u64,
    pub(crate) limit: u64,
}

/// A store for one plugin instance, with the memory cap installed.
pub(crate) fn new_store(engine: &wasmtime::Engine, state: HostState) -> Store<HostState> {
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.memory);
    store
}
