//! [`CompiledStateMachine`]: a validated, compiled state-machine component, ready to instantiate,
//! with its exports looked up once. The applying instance (`applier.rs`) and the query instance
//! (`reader.rs`) are both made from it.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{ComponentExportIndex, Instance, InstancePre};

use super::RuntimeError;
use super::bindings::{
    ApplyParams, ApplyReturn, MigrateParams, MigrateReturn, QueryParams, QueryReturn,
    ResourcesParams, ResourcesReturn,
};
use super::engine::PluginEngine;
use super::host_state::{Access, HostState, new_store};
use super::validate::ComponentInfo;
use crate::proto::PluginLimits;

/// Fuel for instantiation (a component's start code runs then).
const INSTANTIATE_FUEL: u64 = 100_000_000;

pub(crate) struct Exports {
    pub(crate) apply: ComponentExportIndex,
    pub(crate) query: ComponentExportIndex,
    pub(crate) migrate: Option<ComponentExportIndex>,
    /// `command-resources` and `query-resources`, if the plugin names what requests touch.
    pub(crate) resources: Option<(ComponentExportIndex, ComponentExportIndex)>,
}

/// A validated, compiled state-machine plugin, ready to instantiate. Cheap to clone.
#[derive(Clone)]
pub struct CompiledStateMachine {
    inner: Arc<CompiledInner>,
}

struct CompiledInner {
    name: Arc<str>,
    wasm: bytes::Bytes,
    info: ComponentInfo,
    engine: PluginEngine,
    pre: InstancePre<HostState>,
    exports: Exports,
    /// Shared by every applier of this plugin: apply calls, entries, traps.
    recorder: Arc<crate::metrics::ApplyRecorder>,
}

/// The typed exports of one instance.
pub(crate) struct Funcs {
    pub(crate) apply: wasmtime::component::Func,
    pub(crate) query: wasmtime::component::Func,
    pub(crate) migrate: Option<wasmtime::component::Func>,
    /// `command-resources` and `query-resources`.
    pub(crate) resources: Option<(wasmtime::component::Func, wasmtime::component::Func)>,
}

impl CompiledStateMachine {
    pub(crate) fn new(
        name: &str,
        wasm: bytes::Bytes,
        info: ComponentInfo,
        engine: PluginEngine,
        pre: InstancePre<HostState>,
        exports: Exports,
    ) -> Self {
        Self {
            inner: Arc::new(CompiledInner {
                name: name.into(),
                wasm,
                info,
                engine,
                pre,
                exports,
                recorder: Arc::default(),
            }),
        }
    }

    /// What this plugin's appliers record for the node's metrics (since it was loaded here).
    pub(crate) fn apply_recorder(&self) -> Arc<crate::metrics::ApplyRecorder> {
        self.inner.recorder.clone()
    }

    /// The plugin's name (used in logs and keyspace names).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What validation learned about the component.
    pub fn info(&self) -> &ComponentInfo {
        &self.inner.info
    }

    /// The component's `.wasm` bytes (kept so that a deploy can store the plugin it replaces).
    pub fn wasm(&self) -> &bytes::Bytes {
        &self.inner.wasm
    }

    /// The engine that compiled it.
    pub fn engine(&self) -> &PluginEngine {
        &self.inner.engine
    }

    /// Whether the plugin can be instantiated under `limits` (its initial memory within the cap,
    /// its start-up code within the fuel): what a replica applying a configuration or deploy with
    /// those budgets will do, checked before it is proposed.
    pub fn check_limits(&self, limits: &PluginLimits) -> Result<(), RuntimeError> {
        self.instantiate(Access::Closed, limits).map(drop)
    }

    /// A fresh store and instance.
    pub(crate) fn instantiate(
        &self,
        access: Access,
        limits: &PluginLimits,
    ) -> Result<(Store<HostState>, Instance), RuntimeError> {
        let inner = &self.inner;
        let fail = |e: wasmtime::Error| RuntimeError::Instantiate {
            plugin: inner.name.to_string(),
            reason: format!("{e:#}"),
        };
        let mut store = new_store(
            inner.engine.wasmtime(),
            HostState::new(inner.name.clone(), access, limits),
        );
        store.set_fuel(INSTANTIATE_FUEL).map_err(fail)?;
        let instance = inner.pre.instantiate(&mut store).map_err(fail)?;
        Ok((store, instance))
    }

    /// Looks up and type-checks the exports of `instance`.
    pub(crate) fn funcs(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
    ) -> Result<Funcs, RuntimeError> {
        let exports = &self.inner.exports;
        let fail = |what: &str, e: wasmtime::Error| RuntimeError::Instantiate {
            plugin: self.inner.name.to_string(),
            reason: format!("`{what}`: {e:#}"),
        };
        let missing = |what: &str| RuntimeError::Instantiate {
            plugin: self.inner.name.to_string(),
            reason: format!("`{what}` is missing from the instance"),
        };
        let apply = instance
            .get_func(&mut *store, exports.apply)
            .ok_or_else(|| missing("apply"))?;
        apply
            .typed::<ApplyParams<'_>, ApplyReturn>(&*store)
            .map_err(|e| fail("apply", e))?;
        let query = instance
            .get_func(&mut *store, exports.query)
            .ok_or_else(|| missing("query"))?;
        query
            .typed::<QueryParams<'_>, QueryReturn>(&*store)
            .map_err(|e| fail("query", e))?;
        let migrate = match exports.migrate {
            Some(index) => {
                let migrate = instance
                    .get_func(&mut *store, index)
                    .ok_or_else(|| missing("migrate"))?;
                migrate
                    .typed::<MigrateParams<'_>, MigrateReturn>(&*store)
                    .map_err(|e| fail("migrate", e))?;
                Some(migrate)
            }
            None => None,
        };
        let resources = match exports.resources {
            Some((command, query)) => {
                let mut lookup = |index, what: &str| {
                    let func = instance
                        .get_func(&mut *store, index)
                        .ok_or_else(|| missing(what))?;
                    func.typed::<ResourcesParams<'_>, ResourcesReturn>(&*store)
                        .map_err(|e| fail(what, e))?;
                    Ok::<_, RuntimeError>(func)
                };
                Some((
                    lookup(command, "command-resources")?,
                    lookup(query, "query-resources")?,
                ))
            }
            None => None,
        };
        Ok(Funcs {
            apply,
            query,
            migrate,
            resources,
        })
    }
}
