//! [`StateMachineReader`]: answers queries on its own instance, against a snapshot of the
//! committed state. Reads are local and untimed, so they must never touch the applier's instance.

use std::sync::Arc;

use bytes::Bytes;
use wasmtime::Store;
use wasmtime::component::{Func, TypedFunc};

use super::RuntimeError;
use super::bindings::{QueryParams, QueryReturn};
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
    live: Option<(Store<HostState>, Func)>,
}

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
        let (store, func) = match &mut self.live {
            Some(live) => live,
            None => {
                let (mut store, instance) =
                    self.plugin.instantiate(Access::Closed, &self.limits)?;
                let funcs = self.plugin.funcs(&mut store, &instance)?;
                self.live.insert((store, funcs.query))
            }
        };
        let budget = self.limits.fuel_per_query;
        store.data_mut().access = Access::Query(self.state.read_view());
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
}
