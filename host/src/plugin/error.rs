//! Errors of the plugin runtime: a [`PluginError`] means a component was refused; a
//! [`RuntimeError`] means the host could not run a call and the node must stop.

use crate::store::StoreError;

use crate::proto::PluginKind;

/// A component was refused, or the engine could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// The bytes are not WebAssembly at all.
    #[error(
        "not a WebAssembly binary (it does not start with `\\0asm`): expected a component built with \
         `cargo build --target wasm32-wasip2`"
    )]
    NotWasm,
    /// The bytes are a core module, not a component.
    #[error(
        "this is a core WebAssembly module, not a component: build the plugin for the \
         `wasm32-wasip2` target, whose output is a component (wasm32-unknown-unknown and \
         wasm32-wasip1 produce core modules)"
    )]
    CoreModule,
    /// The component did not compile.
    #[error("not a valid WebAssembly component: {reason}")]
    Invalid {
        /// What wasmtime reported.
        reason: String,
    },
    /// The component is of another world than expected.
    #[error("expected a {expected} plugin (exporting `{expected_export}`), but {found}")]
    WrongWorld {
        /// The kind that was asked for.
        expected: PluginKind,
        /// The interface that kind must export.
        expected_export: String,
        /// What the component is instead.
        found: String,
    },
    /// The component imports something its world does not provide.
    #[error(
        "the component imports `{import}`, which a {kind} plugin may not use: plugins get only {allowed} \
         (no WASI). Build it with the iroh-raft plugin SDK, or drop the dependency that pulls the import in"
    )]
    ForbiddenImport {
        /// The plugin kind.
        kind: PluginKind,
        /// The offending import.
        import: String,
        /// What the kind may import.
        allowed: String,
    },
    /// The component exports the right names with the wrong types.
    #[error("the component does not match the {kind} world of iroh-raft:plugin@0.1.0: {reason}")]
    Mismatch {
        /// The plugin kind.
        kind: PluginKind,
        /// What did not match.
        reason: String,
    },
    /// The engine or compile cache failed.
    #[error("plugin engine: {0}")]
    Engine(String),
}

/// The host could not run a plugin call. Fatal: the caller must not commit, and the node stops.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// Storage failed during the call.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// A fresh instance could not be created from a component that was valid before.
    #[error("could not instantiate plugin `{plugin}`: {reason}")]
    Instantiate {
        /// The plugin's name.
        plugin: String,
        /// What wasmtime reported.
        reason: String,
    },
}
