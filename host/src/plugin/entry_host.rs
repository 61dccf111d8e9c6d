//! The `entry` host interface: inside `apply` the plugin marks where each entry begins and ends
//! (the SDK does it, `plugin-api/src/state_machine.rs`), and the host gives every entry exactly `fuel_per_entry` and its own write
//! budget, keeps its writes, and records its outcome and the fuel it burned.
//!
//! Defined with `func_wrap` rather than through `bindgen!`'s `Host` trait, which only sees
//! `&mut HostState`: resetting fuel needs the store.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, WasmList};

use super::host_state::HostState;
use super::memory::MemoryLimitExceeded;
use super::world::interface;

/// The boundaries and outcomes of the `apply` call in progress.
#[derive(Debug, Default)]
pub(crate) struct EntryCall {
    active: bool,
    began: bool,
    entries: usize,
    /// The log index of the call's first entry.
    first_index: u64,
    fuel_per_entry: u64,
    /// Outputs of the finished entries, back to back.
    pub(crate) data: Vec<u8>,
    /// Output length of each finished entry.
    pub(crate) lens: Vec<u32>,
    /// Positions of the finished entries that failed.
    pub(crate) failed: Vec<u32>,
    /// Fuel each finished entry burned.
    pub(crate) fuel: Vec<u64>,
}

impl EntryCall {
    /// An `apply` call over `entries` entries starts.
    pub(crate) fn start(&mut self, first_index: u64, entries: usize, fuel_per_entry: u64) {
        *self = Self {
            active: true,
            began: false,
            entries,
            first_index,
            fuel_per_entry,
            data: Vec::new(),
            lens: Vec::with_capacity(entries),
            failed: Vec::new(),
            fuel: Vec::with_capacity(entries),
        };
    }

    /// The call is over; the entry calls trap until the next one starts.
    pub(crate) fn end(&mut self) {
        self.active = false;
    }

    /// Whether the plugin has marked the first boundary.
    pub(crate) fn began(&self) -> bool {
        self.began
    }

    /// How many entries have finished.
    pub(crate) fn finished(&self) -> usize {
        self.lens.len()
    }
}

/// The plugin called the `entry` interface out of order.
#[derive(Debug, thiserror::Error)]
#[error("the plugin broke the entry protocol: {0}")]
pub(crate) struct BoundaryViolation(pub(crate) &'static str);

fn violation(what: &'static str) -> wasmtime::Error {
    wasmtime::Error::new(BoundaryViolation(what))
}

/// Starts the next entry (or the end of the call) with a fresh budget.
fn next_entry(store: &mut StoreContextMut<'_, HostState>) -> wasmtime::Result<()> {
    let state = store.data_mut();
    state.written = 0;
    let fuel = state.call.fuel_per_entry;
    store.set_fuel(fuel)
}

fn boundary(
    mut store: StoreContextMut<'_, HostState>,
    (output, failed): (WasmList<u8>, bool),
) -> wasmtime::Result<()> {
    let remaining = store.get_fuel()?;
    let call = &mut store.data_mut().call;
    if !call.active {
        return Err(violation("`entry.boundary` called outside `apply`"));
    }
    if !call.began {
        // Before the first entry: nothing to record.
        call.began = true;
        return next_entry(&mut store);
    }
    if call.finished() == call.entries {
        return Err(violation(
            "`entry.boundary` called more often than there are entries, plus one",
        ));
    }
    let Ok(len) = u32::try_from(output.len()) else {
        return Err(violation("an entry's output is over 4 GiB"));
    };
    let index = call.first_index + call.finished() as u64;
    let mut data = std::mem::take(&mut call.data);
    data.extend_from_slice(output.as_le_slice(&store));
    let state = store.data_mut();
    let call = &mut state.call;
    call.data = data;
    if failed {
        call.failed.push(call.lens.len() as u32);
    }
    call.lens.push(len);
    call.fuel
        .push(call.fuel_per_entry.saturating_sub(remaining));
    // The entry completed: its writes stand, whatever happens to the entries after it.
    state.txn.keep_current(index);
    next_entry(&mut store)
}

fn out_of_memory(store: StoreContextMut<'_, HostState>, (needed,): (u64,)) -> wasmtime::Result<()> {
    Err(wasmtime::Error::new(MemoryLimitExceeded {
        desired: needed,
        limit: store.data().memory.entry_memory(),
    }))
}

/// Defines the `entry` interface in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut instance = linker.instance(&interface("entry"))?;
    instance.func_wrap("boundary", boundary)?;
    instance.func_wrap("out-of-memory", out_of_memory)?;
    Ok(())
}
