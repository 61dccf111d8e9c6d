//! Host bindings generated from `wit/` (the same files the guest SDK reads).
#![allow(missing_docs, unreachable_pub, clippy::all)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "iroh-raft:plugin/state-machine",
    with: { "iroh-raft:plugin/kv.cursor": super::kv_host::HostCursor },
    imports: { default: trappable },
});

use super::payload::Payloads;

/// The signatures of the state-machine exports, as the host calls them (`apply` lowers the batch
/// with [`Payloads`], one copy into guest memory).
/// `(first-index, entry-memory, lens, payloads)`.
pub(crate) type ApplyParams<'a> = (u64, u64, &'a [u32], Payloads<'a>);
pub(crate) type ApplyReturn = ();
pub(crate) type QueryParams<'a> = (&'a [u8],);
pub(crate) type QueryReturn = (Result<Vec<u8>, String>,);
pub(crate) type MigrateParams<'a> = (&'a str,);
pub(crate) type MigrateReturn = (Result<(), String>,);
pub(crate) type ResourcesParams<'a> = (&'a [u8],);
pub(crate) type ResourcesReturn = (Result<Option<Vec<String>>, String>,);

/// Host bindings of the `policy` world (`authorizer` export, `policy-config` and `log` imports).
pub(crate) mod policy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "iroh-raft:plugin/policy",
        imports: { default: trappable },
    });
}

/// Host bindings of the `backup` world (`archive` export, `blob-store` and `log` imports).
pub(crate) mod backup {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "iroh-raft:plugin/backup",
        imports: { default: trappable },
    });
}
