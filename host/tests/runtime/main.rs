//! Integration tests of the plugin runtime: every bundled plugin through the real wasmtime host
//! over a real fjall keyspace, faults, determinism, crash atomicity and component rejection.

mod bundled_plugins;
mod crash;
mod determinism;
mod faults;
mod rejection;
mod support;
