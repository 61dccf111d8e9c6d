//! [`StateMachineReader`]: answers queries on its own instance, against a snapshot of the
//! committed state. Reads are local and untimed, so they must never touch the applier's instance.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Store;
use wasmtime::component::{Func, TypedFunc};

use super::RuntimeError;
use super::bindings::{QueryParams, QueryReturn, ResourcesParams, ResourcesReturn};
use super::compiled::CompiledStateMachine;
use super::host_state::{Access, HostState};
use super::trap::{EntryError, classify};
use crate::proto::PluginLimits;
use crate::store::StateStore;

impl CompiledStateMachine {
    /// Creates an instance that answers queries against snapshots of `state`.
    pub fn reader(&self, state: Arc<dyn StateStore>, limits: PluginLimits) -> StateMachineReader {
        StateMachineReader::new(self.clone(), state, limits)
    }
}

/// Runs a state machine's `query` export.
pub struct StateMachineReader {
    plugin: CompiledStateMachine,
    state: Arc<dyn StateStore>,
    limits: PluginLimits,
    live: Option<Live>,
}

/// The reader's instance and the exports it calls.
struct Live {
    store: Store<HostState>,
    query: Func,
    resources: Option<(Func, Func)>,
}

/// Fuel for naming what one request touches: a decode and a few strings.
const RESOURCES_FUEL: u64 = 10_000_000;

impl StateMachineReader {
    pub(crate) fn new(
        plugin: CompiledStateMachine,
        state: Arc<dyn StateStore>,
        limits: PluginLimits,
    ) -> Self {
        Self {
            plugin,
            state,
            limits,
            live: None,
        }
    }

    /// Answers `request` against the state committed so far.
    pub fn query(&mut self, request: &[u8]) -> Result<Result<Bytes, EntryError>, RuntimeError> {
        let budget = self.limits.fuel_per_query;
        let view = self.state.read_view();
        let Live {
            store, query: func, ..
        } = self.live()?;
        store.data_mut().access = Access::Query(view);
        let fuel = store.set_fuel(budget);
        // SAFETY: `CompiledStateMachine::funcs` type-checked `query` against these types.
        let query = unsafe { TypedFunc::<QueryParams<'_>, QueryReturn>::new_unchecked(*func) };
        let result = fuel.and_then(|()| query.call(&mut *store, (request,)));
        store.data_mut().access = Access::Closed;
        if let Some(error) = store.data_mut().storage_fault.take() {
            return Err(RuntimeError::Storage(error));
        }
        Ok(match result {
            Ok((Ok(response),)) => Ok(Bytes::from(response)),
            Ok((Err(message),)) => Err(EntryError::Rejected(message)),
            Err(error) => {
                // A trapped instance refuses further calls; the next query gets a fresh one.
                self.live = None;
                Err(classify(&error, budget))
            }
        })
    }

    /// What `request` touches, as the plugin's `resources` export names it: a command's writes
    /// (`write`) or a query's reads. `Ok(None)`: the plugin does not narrow it (it has no such
    /// export, or says so).
    pub fn resources(
        &mut self,
        request: &[u8],
        write: bool,
    ) -> Result<Result<Option<Vec<String>>, EntryError>, RuntimeError> {
        let Live {
            store, resources, ..
        } = self.live()?;
        let Some((command, query)) = resources else {
            return Ok(Ok(None));
        };
        let func = if write { *command } else { *query };
        store.data_mut().access = Access::Closed;
        let fuel = store.set_fuel(RESOURCES_FUEL);
        // SAFETY: `CompiledStateMachine::funcs` type-checked both against these types.
        let typed =
            unsafe { TypedFunc::<ResourcesParams<'_>, ResourcesReturn>::new_unchecked(func) };
        let result = fuel.and_then(|()| typed.call(&mut *store, (request,)));
        Ok(match result {
            Ok((Ok(names),)) => Ok(names),
            Ok((Err(message),)) => Err(EntryError::Rejected(message)),
            Err(error) => {
                self.live = None;
                Err(classify(&error, RESOURCES_FUEL))
            }
        })
    }

    /// The instance, created on first use (and again after a trap).
    fn live(&mut self) -> Result<&mut Live, RuntimeError> {
        let live = match self.live.take() {
            Some(live) => live,
            None => {
                let (mut store, instance) =
                    self.plugin.instantiate(Access::Closed, &self.limits)?;
                let funcs = self.plugin.funcs(&mut store, &instance)?;
                Live {
                    store,
                    query: funcs.query,
                    resources: funcs.resources,
                }
            }
        };
        Ok(self.live.insert(live))
    }
}
