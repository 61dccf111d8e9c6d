//! [`StateMachineApplier`]: applies batches of committed entries through one wasm call each,
//! isolating entries that trap, and commits their writes atomically with the applied marker.
//!
//! Determinism: the instance is created when the applier is, and again right after a trap, never
//! lazily; fuel is set before every call. Two appliers fed the same batches therefore return the
//! same bytes, burn the same fuel and leave the same keyspace. Queries run on a separate instance
//! ([`super::StateMachineReader`]) so that local reads never disturb this one.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Store;
use wasmtime::component::{Func, TypedFunc};

use super::RuntimeError;
use super::bindings::exports::iroh_raft::plugin::machine::ApplyResults;
use super::bindings::{ApplyParams, ApplyReturn, MigrateParams, MigrateReturn};
use super::compiled::CompiledStateMachine;
use super::host_state::{Access, HostState};
use super::payload::Payloads;
use super::trap::{EntryError, classify};
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
    instances_created: u64,
}

impl StateMachineApplier {
    pub(crate) fn new(
        plugin: CompiledStateMachine,
        state: Arc<dyn StateStore>,
        limits: PluginLimits,
    ) -> Result<Self, RuntimeError> {
        let live = Self::instantiate(&plugin, &state, &limits)?;
        Ok(Self {
            plugin,
            state,
            limits,
            live,
            fuel_consumed: 0,
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

    /// Fuel burned by all calls so far.
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
    /// The whole batch goes to the plugin in one call. If that call traps, its writes are dropped
    /// and the entries are applied again one by one, so only the entries that trap on their own
    /// fail; each trap re-creates the instance.
    pub fn apply(
        &mut self,
        first_index: u64,
        entries: &[Bytes],
    ) -> Result<Vec<EntryOutcome>, RuntimeError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        match self.call_apply(first_index, entries)? {
            Ok(outcomes) => Ok(outcomes),
            Err(fault) if entries.len() == 1 => Ok(vec![Err(fault)]),
            Err(_) => {
                let mut outcomes = Vec::with_capacity(entries.len());
                for (offset, entry) in entries.iter().enumerate() {
                    let index = first_index + offset as u64;
                    match self.call_apply(index, std::slice::from_ref(entry))? {
                        Ok(mut one) => outcomes.push(one.pop().unwrap_or_else(|| {
                            Err(EntryError::Malformed("no result for the entry".into()))
                        })),
                        Err(fault) => outcomes.push(Err(fault)),
                    }
                }
                Ok(outcomes)
            }
        }
    }

    /// One wasm call over `entries`. `Ok(Err(fault))`: the call trapped or returned malformed
    /// results; its writes were dropped and the instance replaced.
    fn call_apply(
        &mut self,
        first_index: u64,
        entries: &[Bytes],
    ) -> Result<Result<Vec<EntryOutcome>, EntryError>, RuntimeError> {
        let budget = self
            .limits
            .fuel_per_entry
            .saturating_mul(entries.len() as u64);
        let lens: Vec<u32> = entries.iter().map(|e| e.len() as u32).collect();
        self.live
            .store
            .set_fuel(budget)
            .map_err(|e| self.fatal(e))?;
        let store = &mut self.live.store;
        // One entry's budget for the whole call: a call over it traps and is replayed entry by
        // entry, so each entry is held to the budget alone, however the batch was grouped.
        store
            .data_mut()
            .begin_call(self.limits.max_entry_write_bytes);
        // SAFETY: `CompiledStateMachine::funcs` type-checked `apply` against these types.
        let apply =
            unsafe { TypedFunc::<ApplyParams<'_>, ApplyReturn>::new_unchecked(self.live.apply) };
        let result =
            contain_panic(|| apply.call(&mut *store, (first_index, &lens, Payloads::new(entries))));
        self.fuel_consumed += budget - store.get_fuel().unwrap_or(0);
        if let Some(error) = store.data_mut().storage_fault.take() {
            store.data_mut().txn.discard_all();
            return Err(RuntimeError::Storage(error));
        }
        let fault = match result.map(|(results,)| unpack(results, entries.len())) {
            Ok(Ok(outcomes)) => {
                store.data_mut().txn.keep_current();
                return Ok(Ok(outcomes));
            }
            Ok(Err(malformed)) => malformed,
            Err(error) => classify(&error, budget),
        };
        tracing::debug!(
            plugin = self.plugin.name(),
            first_index,
            entries = entries.len(),
            "apply failed: {fault}"
        );
        store.data_mut().txn.discard_current();
        self.reinstantiate()?;
        Ok(Err(fault))
    }

    /// Runs the plugin's `migrate(from_version)` (a no-op if it exports none). Its writes stay
    /// pending until [`Self::commit`]; on failure they are dropped and the reason returned.
    pub fn migrate(&mut self, from_version: &str) -> Result<Result<(), EntryError>, RuntimeError> {
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
                store.data_mut().txn.keep_current();
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
        let writes = self.live.store.data_mut().txn.take_done();
        self.state.commit(writes, applied)?;
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

/// Checks the plugin's packed results against the batch and splits them per entry, without
/// copying the response bytes again.
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

fn unpack(results: ApplyResults, entries: usize) -> Result<Vec<EntryOutcome>, EntryError> {
    let ApplyResults { lens, failed, data } = results;
    if lens.len() != entries {
        return Err(EntryError::Malformed(format!(
            "{} results for {entries} entries",
            lens.len()
        )));
    }
    let total: u64 = lens.iter().map(|&len| u64::from(len)).sum();
    if total != data.len() as u64 {
        return Err(EntryError::Malformed(format!(
            "lengths add up to {total} bytes but {} were returned",
            data.len()
        )));
    }
    if failed.windows(2).any(|pair| pair[0] >= pair[1])
        || failed.last().is_some_and(|&last| last as usize >= entries)
    {
        return Err(EntryError::Malformed(
            "failed positions not ascending or out of range".into(),
        ));
    }
    let data = Bytes::from(data);
    let mut failed = failed.into_iter().peekable();
    let mut offset = 0;
    Ok(lens
        .into_iter()
        .enumerate()
        .map(|(position, len)| {
            let bytes = data.slice(offset..offset + len as usize);
            offset += len as usize;
            if failed.next_if_eq(&(position as u32)).is_some() {
                Err(EntryError::Rejected(
                    String::from_utf8_lossy(&bytes).into_owned(),
                ))
            } else {
                Ok(bytes)
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results(lens: Vec<u32>, failed: Vec<u32>, data: &[u8]) -> ApplyResults {
        ApplyResults {
            lens,
            failed,
            data: data.to_vec(),
        }
    }

    #[test]
    fn unpack_splits_outcomes() {
        let outcomes = unpack(results(vec![2, 3, 0], vec![1], b"okbad"), 3).unwrap();
        assert_eq!(outcomes[0], Ok(Bytes::from_static(b"ok")));
        assert_eq!(outcomes[1], Err(EntryError::Rejected("bad".into())));
        assert_eq!(outcomes[2], Ok(Bytes::new()));
    }

    #[test]
    fn unpack_refuses_results_that_do_not_fit() {
        for (r, n) in [
            (results(vec![1], vec![], b"x"), 2),
            (results(vec![1, 1], vec![], b"x"), 2),
            (results(vec![1, 1], vec![1, 1], b"xy"), 2),
            (results(vec![1, 1], vec![2], b"xy"), 2),
        ] {
            assert!(matches!(unpack(r, n), Err(EntryError::Malformed(_))));
        }
    }
}
