//! [`StateMachineApplier`]: applies batches of committed entries through one wasm call each,
//! isolating entries that trap, and commits their writes atomically with the applied marker.
//!
//! Determinism: fuel, the write budget and (in the SDK) memory are budgeted per entry, between the
//! boundaries the plugin marks through the `entry` interface (`entry_host.rs`), so an entry's
//! outcome and fuel depend only on the entry and the state before it: not on how entries were
//! grouped into calls, nor on what the instance ran before. Queries run on a separate instance
//! ([`super::StateMachineReader`]) so that local reads never disturb this one.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Store;
use wasmtime::component::{Func, TypedFunc};

use super::RuntimeError;
use super::bindings::{ApplyParams, ApplyReturn, MigrateParams, MigrateReturn};
use super::compiled::CompiledStateMachine;
use super::host_state::{Access, HostState};
use super::payload::Payloads;
use super::trap::{EntryError, classify};
use crate::metrics::ApplyRecorder;
use crate::proto::PluginLimits;
use crate::store::{AppliedMark, StateStore};

impl CompiledStateMachine {
    /// Creates the instance that applies committed entries to `state`.
    pub fn applier(
        &self,
        state: Arc<dyn StateStore>,
        limits: PluginLimits,
    ) -> Result<StateMachineApplier, RuntimeError> {
        StateMachineApplier::new(self.clone(), state, limits)
    }
}

/// The outcome of one entry: the plugin's response bytes, or why it failed.
pub type EntryOutcome = Result<Bytes, EntryError>;

/// What one `apply` call produced: the outcomes and fuel of the entries that finished, in order,
/// and how it ended.
struct Call {
    outcomes: Vec<EntryOutcome>,
    fuel: Vec<u64>,
    stop: Stop,
}

/// How an `apply` call ended.
enum Stop {
    /// Every entry finished and the call returned.
    Done,
    /// The entry after the finished ones trapped, having burned `fuel`.
    InEntry { fault: EntryError, fuel: u64 },
    /// A fault before the first entry began (lowering the batch, the plugin's set-up).
    Outside(EntryError),
    /// A fault after every entry finished: the outcomes stand.
    AfterEntries,
    /// The call returned with entries unfinished: they fail with this.
    Unfinished(EntryError),
}

struct Live {
    store: Store<HostState>,
    apply: Func,
    migrate: Option<Func>,
}

/// Applies committed entries to a state machine's keyspace.
pub struct StateMachineApplier {
    plugin: CompiledStateMachine,
    state: Arc<dyn StateStore>,
    limits: PluginLimits,
    live: Live,
    fuel_consumed: u64,
    entry_fuel: Vec<u64>,
    instances_created: u64,
    /// One observation per [`Self::apply`] call, its entries, and the entries that trapped by
    /// kind, for the node's metrics (the plugin's, shared by its appliers).
    recorder: Arc<ApplyRecorder>,
}

impl StateMachineApplier {
    pub(crate) fn new(
        plugin: CompiledStateMachine,
        state: Arc<dyn StateStore>,
        limits: PluginLimits,
    ) -> Result<Self, RuntimeError> {
        let live = Self::instantiate(&plugin, &state, &limits)?;
        Ok(Self {
            recorder: plugin.apply_recorder(),
            plugin,
            state,
            limits,
            live,
            fuel_consumed: 0,
            entry_fuel: Vec::new(),
            instances_created: 1,
        })
    }

    fn instantiate(
        plugin: &CompiledStateMachine,
        state: &Arc<dyn StateStore>,
        limits: &PluginLimits,
    ) -> Result<Live, RuntimeError> {
        let (mut store, instance) = plugin.instantiate(Access::Apply(state.clone()), limits)?;
        let funcs = plugin.funcs(&mut store, &instance)?;
        Ok(Live {
            store,
            apply: funcs.apply,
            migrate: funcs.migrate,
        })
    }

    /// Replaces the instance after a trap, keeping the transaction's completed writes.
    fn reinstantiate(&mut self) -> Result<(), RuntimeError> {
        let txn = std::mem::take(&mut self.live.store.data_mut().txn);
        self.live = Self::instantiate(&self.plugin, &self.state, &self.limits)?;
        self.live.store.data_mut().txn = txn;
        self.instances_created += 1;
        Ok(())
    }

    /// Switches to new budgets. The instance is re-created (keeping the transaction's writes), so
    /// every replica changing budgets at the same entry has identical instances from there on.
    ///
    /// `Ok(Err(reason))`: the plugin cannot be instantiated under `limits` (say, its initial
    /// memory is over the new cap). That is the same on every replica, so the old budgets and
    /// instance stay and the caller refuses the change; only a storage error is `Err`.
    pub fn set_limits(&mut self, limits: PluginLimits) -> Result<Result<(), String>, RuntimeError> {
        if limits == self.limits {
            return Ok(Ok(()));
        }
        let live = match Self::instantiate(&self.plugin, &self.state, &limits) {
            Ok(live) => live,
            Err(RuntimeError::Instantiate { reason, .. }) => return Ok(Err(reason)),
            Err(other) => return Err(other),
        };
        let txn = std::mem::take(&mut self.live.store.data_mut().txn);
        self.live = live;
        self.live.store.data_mut().txn = txn;
        self.limits = limits;
        self.instances_created += 1;
        Ok(Ok(()))
    }

    /// The budgets calls run under.
    pub fn limits(&self) -> PluginLimits {
        self.limits
    }

    /// The plugin this applier runs.
    pub fn plugin(&self) -> &CompiledStateMachine {
        &self.plugin
    }

    /// Fuel burned by all entries and migrations so far (not counting the few instructions around
    /// entries, so that replicas agree however their batches were grouped).
    pub fn fuel_consumed(&self) -> u64 {
        self.fuel_consumed
    }

    /// Instances created so far (one at start, one after every trap).
    pub fn instances_created(&self) -> u64 {
        self.instances_created
    }

    /// Applies entries `first_index..` and returns one outcome per entry. Their writes stay pending
    /// until [`Self::commit`].
    ///
    /// The batch goes to the plugin in one call, which reports each entry's outcome at its end
    /// (`entry.boundary`); every entry gets exactly `fuel_per_entry` and its own write budget. If an
    /// entry traps, only its own writes are dropped, it fails, the instance is re-created and the
    /// call goes on from the next entry. Since an entry's execution depends only on the entry and
    /// the state before it, this is what applying each entry alone would give.
    pub fn apply(
        &mut self,
        first_index: u64,
        entries: &[Bytes],
    ) -> Result<Vec<EntryOutcome>, RuntimeError> {
        let started = std::time::Instant::now();
        self.entry_fuel.clear();
        let mut outcomes = Vec::with_capacity(entries.len());
        // Entries per call; 1 after a fault outside any entry (see `Stop::Outside`).
        let mut chunk = entries.len();
        while outcomes.len() < entries.len() {
            let done = outcomes.len();
            let rest = &entries[done..(done + chunk).min(entries.len())];
            let call = self.call_apply(first_index + done as u64, rest)?;
            let finished = call.outcomes.len();
            outcomes.extend(call.outcomes);
            self.entry_fuel.extend(&call.fuel);
            match call.stop {
                Stop::Done | Stop::AfterEntries => {}
                Stop::InEntry { fault, fuel } => {
                    outcomes.push(Err(fault));
                    self.entry_fuel.push(fuel);
                }
                Stop::Outside(fault) if rest.len() == 1 => {
                    outcomes.push(Err(fault));
                    self.entry_fuel.push(0);
                }
                // Nothing ran yet: apply the entries one per call from here, so the fault, if it
                // stays, belongs to one entry.
                Stop::Outside(_) => chunk = 1,
                Stop::Unfinished(fault) => {
                    for _ in finished..rest.len() {
                        outcomes.push(Err(fault.clone()));
                        self.entry_fuel.push(0);
                    }
                }
            }
        }
        self.fuel_consumed += self.entry_fuel.iter().sum::<u64>();
        self.recorder.applied(entries.len(), started.elapsed());
        for fault in outcomes.iter().filter_map(|o| o.as_ref().err()) {
            if let Some(kind) = fault.trap_kind() {
                self.recorder.trapped(kind);
            }
        }
        Ok(outcomes)
    }

    /// The fuel each entry of the last [`Self::apply`] burned, in order: the same for an entry
    /// however the entries were grouped into calls (`fuel_per_entry` for one that ran out).
    pub fn entry_fuel(&self) -> &[u64] {
        &self.entry_fuel
    }

    /// One wasm call over `entries`; see [`Stop`] for how it can end. After any fault the
    /// instance has been replaced.
    fn call_apply(&mut self, first_index: u64, entries: &[Bytes]) -> Result<Call, RuntimeError> {
        let lens: Vec<u32> = entries.iter().map(|e| e.len() as u32).collect();
        let payloads = Payloads::new(entries);
        let fuel_per_entry = self.limits.fuel_per_entry;
        // The part of the call outside entries (lowering, set-up) gets one entry's fuel too.
        self.live
            .store
            .set_fuel(fuel_per_entry)
            .map_err(|e| self.fatal(e))?;
        let store = &mut self.live.store;
        let state = store.data_mut();
        state.begin_call(self.limits.max_entry_write_bytes);
        state.call.start(first_index, entries.len(), fuel_per_entry);
        state.memory.begin_apply(lens.len() * 4 + payloads.len());
        let entry_memory = state.memory.entry_memory();
        // SAFETY: `CompiledStateMachine::funcs` type-checked `apply` against these types.
        let apply =
            unsafe { TypedFunc::<ApplyParams<'_>, ApplyReturn>::new_unchecked(self.live.apply) };
        let result =
            contain_panic(|| apply.call(&mut *store, (first_index, entry_memory, &lens, payloads)));
        let remaining = store.get_fuel().unwrap_or(0);
        let state = store.data_mut();
        state.memory.end_apply();
        state.call.end();
        if let Some(error) = state.storage_fault.take() {
            state.txn.discard_all();
            return Err(RuntimeError::Storage(error));
        }
        let call = &mut state.call;
        let (began, finished) = (call.began(), call.finished());
        let outcomes = split(std::mem::take(&mut call.data), &call.lens, &call.failed);
        let fuel = std::mem::take(&mut call.fuel);
        let stop = match result {
            Ok(()) if finished == entries.len() => Stop::Done,
            Ok(()) => Stop::Unfinished(EntryError::Malformed(if began {
                format!(
                    "the plugin returned after finishing {finished} of {} entries",
                    entries.len()
                )
            } else {
                "the plugin did not mark its entries (`entry.boundary`): build it with the \
                 iroh-raft plugin SDK"
                    .into()
            })),
            Err(error) => {
                let fault = classify(&error, fuel_per_entry);
                tracing::debug!(
                    plugin = self.plugin.name(),
                    index = first_index + finished as u64,
                    "apply failed: {fault}"
                );
                if !began {
                    Stop::Outside(fault)
                } else if finished == entries.len() {
                    Stop::AfterEntries
                } else {
                    Stop::InEntry {
                        fuel: fuel_per_entry.saturating_sub(remaining),
                        fault,
                    }
                }
            }
        };
        // The entry in progress (if any) did not finish: its writes go.
        store.data_mut().txn.discard_current();
        if !matches!(stop, Stop::Done | Stop::Unfinished(_)) {
            self.reinstantiate()?;
        }
        Ok(Call {
            outcomes,
            fuel,
            stop,
        })
    }

    /// Runs the plugin's `migrate(from_version)` (a no-op if it exports none) for the activation
    /// at log index `index`. Its writes stay pending until [`Self::commit`]; on failure they are
    /// dropped and the reason returned.
    pub fn migrate(
        &mut self,
        from_version: &str,
        index: u64,
    ) -> Result<Result<(), EntryError>, RuntimeError> {
        let Some(migrate) = self.live.migrate else {
            return Ok(Ok(()));
        };
        let budget = self.limits.fuel_per_migration;
        self.live
            .store
            .set_fuel(budget)
            .map_err(|e| self.fatal(e))?;
        let store = &mut self.live.store;
        // A migration rewrites the keyspace in one step: no per-entry write budget.
        store.data_mut().begin_call(u64::MAX);
        // SAFETY: `CompiledStateMachine::funcs` type-checked `migrate` against these types.
        let migrate =
            unsafe { TypedFunc::<MigrateParams<'_>, MigrateReturn>::new_unchecked(migrate) };
        let result = contain_panic(|| migrate.call(&mut *store, (from_version,)));
        self.fuel_consumed += budget - store.get_fuel().unwrap_or(0);
        if let Some(error) = store.data_mut().storage_fault.take() {
            store.data_mut().txn.discard_all();
            return Err(RuntimeError::Storage(error));
        }
        match result {
            Ok((Ok(()),)) => {
                store.data_mut().txn.keep_current(index);
                Ok(Ok(()))
            }
            Ok((Err(message),)) => {
                store.data_mut().txn.discard_current();
                Ok(Err(EntryError::Rejected(message)))
            }
            Err(error) => {
                let fault = classify(&error, budget);
                store.data_mut().txn.discard_current();
                self.reinstantiate()?;
                Ok(Err(fault))
            }
        }
    }

    /// Number of keys written since the last commit.
    pub fn pending_writes(&self) -> usize {
        self.live.store.data().txn.pending_len()
    }

    /// Commits the pending writes together with `applied`, atomically.
    pub fn commit(&mut self, applied: &AppliedMark) -> Result<(), RuntimeError> {
        let (writes, changes) = self.live.store.data_mut().txn.take_done();
        self.state.commit(writes, changes, applied)?;
        Ok(())
    }

    /// Drops the pending writes.
    pub fn abort(&mut self) {
        self.live.store.data_mut().txn.discard_all();
    }

    fn fatal(&self, error: wasmtime::Error) -> RuntimeError {
        RuntimeError::Instantiate {
            plugin: self.plugin.name().to_string(),
            reason: format!("{error:#}"),
        }
    }
}

/// Runs a wasm call, turning a panic in host code during it (one the entry's input caused) into
/// an error of that call, so it fails the entry instead of the node.
fn contain_panic<T>(call: impl FnOnce() -> wasmtime::Result<T>) -> wasmtime::Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with no message".into());
        Err(wasmtime::Error::msg(format!(
            "host code panicked on this entry: {message}"
        )))
    })
}

/// Splits the finished entries' outputs, without copying them again.
fn split(data: Vec<u8>, lens: &[u32], failed: &[u32]) -> Vec<EntryOutcome> {
    let data = Bytes::from(data);
    let mut failed = failed.iter().peekable();
    let mut offset = 0;
    lens.iter()
        .enumerate()
        .map(|(position, &len)| {
            let bytes = data.slice(offset..offset + len as usize);
            offset += len as usize;
            if failed.next_if_eq(&&(position as u32)).is_some() {
                Err(EntryError::Rejected(
                    String::from_utf8_lossy(&bytes).into_owned(),
                ))
            } else {
                Ok(bytes)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_gives_each_entry_its_output() {
        let outcomes = split(b"okbad".to_vec(), &[2, 3, 0], &[1]);
        assert_eq!(outcomes[0], Ok(Bytes::from_static(b"ok")));
        assert_eq!(outcomes[1], Err(EntryError::Rejected("bad".into())));
        assert_eq!(outcomes[2], Ok(Bytes::new()));
    }
}
