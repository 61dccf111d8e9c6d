//! The generated WIT bindings, one module per world. Each world sits behind its cargo feature so a
//! plugin component carries only its own world's type information.
#![allow(missing_docs, unreachable_pub, clippy::all)]

/// Bindings for the `migrating-state-machine` world (the state machine plus `migration`).
#[cfg(feature = "state-machine")]
pub mod state_machine {
    wit_bindgen::generate!({
        path: "../wit",
        world: "iroh-raft:plugin/migrating-state-machine",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "iroh_raft_plugin_api::bindings::state_machine",
    });
}

/// Bindings for the `policy` world.
#[cfg(feature = "policy")]
pub mod policy {
    wit_bindgen::generate!({
        path: "../wit",
        world: "iroh-raft:plugin/policy",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "iroh_raft_plugin_api::bindings::policy",
    });
}

/// Bindings for the `backup` world.
#[cfg(feature = "backup")]
pub mod backup {
    wit_bindgen::generate!({
        path: "../wit",
        world: "iroh-raft:plugin/backup",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "iroh_raft_plugin_api::bindings::backup",
    });
}
