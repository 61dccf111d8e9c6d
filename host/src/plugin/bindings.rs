//! Host bindings generated from `wit/` (the same files the guest SDK reads).
#![allow(missing_docs, unreachable_pub, clippy::all)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "iroh-raft:plugin/state-machine",
    with: { "iroh-raft:plugin/kv.cursor": super::kv_host::HostCursor },
    imports: { default: trappable },
});
