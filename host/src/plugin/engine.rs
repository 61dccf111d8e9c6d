//! The node's wasmtime engine, configured for determinism, with an on-disk cache of compiled
//! components keyed by the wasm's sha256 and the engine's configuration.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use wasmtime::component::{Component, ComponentExportIndex, HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::backup::{self, BackupState, CompiledBackup};
use super::compiled::{CompiledStateMachine, Exports};
use super::host_state::{Access, HostState};
use super::policy::{self, CompiledPolicy, PolicyState};
use super::validate::{self, ComponentInfo};
use super::world::interface;
use super::{PluginError, bindings};
use super::{entry_host, kv_fuel};
use crate::proto::{PluginKind, PluginLimits};

/// One wasmtime engine for all plugins of a node.
#[derive(Clone)]
pub struct PluginEngine {
    inner: Arc<EngineInner>,
}

struct EngineInner {
    engine: Engine,
    state_machine_linker: Linker<HostState>,
    policy_linker: Linker<PolicyState>,
    backup_linker: Linker<BackupState>,
    cache_dir: Option<PathBuf>,
    /// Hash of everything in the engine configuration that a compiled artifact depends on.
    config_hash: String,
    compiled: AtomicU64,
    cache_hits: AtomicU64,
}

impl PluginEngine {
    /// Creates the engine. With `cache_dir`, compiled components are kept there and reused.
    pub fn new(cache_dir: Option<&Path>) -> Result<Self, PluginError> {
        let engine_error = |e: wasmtime::Error| PluginError::Engine(e.to_string());
        let mut config = Config::new();
        config
            .consume_fuel(true)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            // Without the component-model-async feature this is already off; say so anyway: on,
            // it costs ~350 ns on every call.
            .concurrency_support(false);
        let engine = Engine::new(&config).map_err(engine_error)?;
        let mut state_machine_linker = Linker::new(&engine);
        // `kv` and `log` through their generated `Host` traits; `entry` by hand, since it resets
        // the store's fuel (`entry_host.rs`).
        bindings::iroh_raft::plugin::kv::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut state_machine_linker,
            |state| state,
        )
        .map_err(engine_error)?;
        bindings::iroh_raft::plugin::log::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut state_machine_linker,
            |state| state,
        )
        .map_err(engine_error)?;
        entry_host::add_to_linker(&mut state_machine_linker).map_err(engine_error)?;
        // `put` charges fuel for the bytes it lifts, which needs the store.
        kv_fuel::add_to_linker(&mut state_machine_linker).map_err(engine_error)?;
        let mut policy_linker = Linker::new(&engine);
        policy::add_to_linker(&mut policy_linker).map_err(engine_error)?;
        let mut backup_linker = Linker::new(&engine);
        backup::add_to_linker(&mut backup_linker).map_err(engine_error)?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        if let Some(dir) = cache_dir {
            std::fs::create_dir_all(dir).map_err(|e| {
                PluginError::Engine(format!(
                    "cannot create compile cache {}: {e}",
                    dir.display()
                ))
            })?;
        }
        Ok(Self {
            inner: Arc::new(EngineInner {
                engine,
                state_machine_linker,
                policy_linker,
                backup_linker,
                cache_dir: cache_dir.map(Path::to_path_buf),
                config_hash: format!("{:016x}", hasher.finish()),
                compiled: AtomicU64::new(0),
                cache_hits: AtomicU64::new(0),
            }),
        })
    }

    /// How many components were compiled, and how many were loaded from the cache instead.
    pub fn compile_stats(&self) -> (u64, u64) {
        (
            self.inner.compiled.load(Ordering::Relaxed),
            self.inner.cache_hits.load(Ordering::Relaxed),
        )
    }

    /// Checks that `wasm` is a component of the world of `kind`, compiling it (or loading it from
    /// the cache).
    pub fn validate(&self, kind: PluginKind, wasm: &[u8]) -> Result<ComponentInfo, PluginError> {
        let (_, info) = self.compile_checked(kind, wasm)?;
        Ok(info)
    }

    /// Validates and prepares a state-machine plugin called `name`.
    pub fn load_state_machine(
        &self,
        name: &str,
        wasm: &[u8],
    ) -> Result<CompiledStateMachine, PluginError> {
        let kind = PluginKind::StateMachine;
        let (component, info) = self.compile_checked(kind, wasm)?;
        let mismatch = |reason: String| PluginError::Mismatch { kind, reason };
        let pre = self
            .inner
            .state_machine_linker
            .instantiate_pre(&component)
            .map_err(|e| mismatch(e.to_string()))?;
        let export = |instance: Option<&ComponentExportIndex>, name: &str| {
            component
                .get_export_index(instance, name)
                .ok_or_else(|| mismatch(format!("it does not export `{name}`")))
        };
        let machine = export(None, &interface("machine"))?;
        let resources = if info.has_resources {
            let resources = export(None, &interface("resources"))?;
            Some((
                export(Some(&resources), "command-resources")?,
                export(Some(&resources), "query-resources")?,
            ))
        } else {
            None
        };
        let exports = Exports {
            apply: export(Some(&machine), "apply")?,
            query: export(Some(&machine), "query")?,
            resources,
            migrate: if info.has_migration {
                let migration = export(None, &interface("migration"))?;
                Some(export(Some(&migration), "migrate")?)
            } else {
                None
            },
        };
        let compiled = CompiledStateMachine::new(
            name,
            bytes::Bytes::copy_from_slice(wasm),
            info,
            self.clone(),
            pre,
            exports,
        );
        // Instantiate once to type-check every export against the world.
        let (mut store, instance) = compiled
            .instantiate(Access::Closed, &PluginLimits::default())
            .map_err(|e| mismatch(e.to_string()))?;
        compiled
            .funcs(&mut store, &instance)
            .map_err(|e| mismatch(e.to_string()))?;
        Ok(compiled)
    }

    /// Validates and prepares an access policy called `name`.
    pub fn load_policy(&self, name: &str, wasm: &[u8]) -> Result<CompiledPolicy, PluginError> {
        let kind = PluginKind::Policy;
        let (component, _) = self.compile_checked(kind, wasm)?;
        let mismatch = |reason: String| PluginError::Mismatch { kind, reason };
        let pre = self
            .inner
            .policy_linker
            .instantiate_pre(&component)
            .map_err(|e| mismatch(e.to_string()))?;
        let pre = bindings::policy::PolicyPre::new(pre).map_err(|e| mismatch(format!("{e:#}")))?;
        Ok(CompiledPolicy::new(name, pre, self.clone()))
    }

    /// Validates and prepares a backup handler called `name`.
    pub fn load_backup(&self, name: &str, wasm: &[u8]) -> Result<CompiledBackup, PluginError> {
        let kind = PluginKind::Backup;
        let (component, info) = self.compile_checked(kind, wasm)?;
        let mismatch = |reason: String| PluginError::Mismatch { kind, reason };
        let pre = self
            .inner
            .backup_linker
            .instantiate_pre(&component)
            .map_err(|e| mismatch(e.to_string()))?;
        let pre = bindings::backup::BackupPre::new(pre).map_err(|e| mismatch(format!("{e:#}")))?;
        Ok(CompiledBackup::new(name, info.sha256, pre, self.clone()))
    }

    fn compile_checked(
        &self,
        kind: PluginKind,
        wasm: &[u8],
    ) -> Result<(Component, ComponentInfo), PluginError> {
        validate::check_header(wasm)?;
        let sha256 = crate::hash::sha256(wasm);
        let component = self.compile(wasm, &sha256)?;
        let info = validate::check_world(&self.inner.engine, &component, kind, sha256, wasm.len())?;
        Ok((component, info))
    }

    fn compile(&self, wasm: &[u8], sha256: &[u8; 32]) -> Result<Component, PluginError> {
        let engine = &self.inner.engine;
        let invalid = |e: wasmtime::Error| PluginError::Invalid {
            reason: format!("{e:#}"),
        };
        let Some(dir) = &self.inner.cache_dir else {
            self.inner.compiled.fetch_add(1, Ordering::Relaxed);
            return Component::new(engine, wasm).map_err(invalid);
        };
        let path = dir.join(format!(
            "{}-{}.cwasm",
            crate::hash::sha256_hex(sha256),
            self.inner.config_hash
        ));
        if path.exists() {
            // SAFETY: the file is named by the wasm's hash and this engine's configuration hash and
            // was written by `precompile_component` below, into the node's own data directory.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    self.inner.cache_hits.fetch_add(1, Ordering::Relaxed);
                    return Ok(component);
                }
                Err(e) => tracing::warn!(
                    path = %path.display(),
                    "compiled plugin in the cache is unusable ({e}); compiling it again"
                ),
            }
        }
        self.inner.compiled.fetch_add(1, Ordering::Relaxed);
        let artifact = engine.precompile_component(wasm).map_err(invalid)?;
        let tmp = path.with_extension("cwasm.tmp");
        let written = std::fs::write(&tmp, &artifact).and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            // The cache is an optimisation: run without it rather than refuse the plugin.
            tracing::warn!(path = %path.display(), "cannot write compiled plugin to the cache: {e}");
        }
        // SAFETY: `artifact` was produced just now by this engine's `precompile_component`.
        unsafe { Component::deserialize(engine, &artifact) }.map_err(invalid)
    }
}

impl PluginEngine {
    /// The wasmtime engine underneath.
    pub(crate) fn wasmtime(&self) -> &Engine {
        &self.inner.engine
    }
}
