//! Integration tests of the plugin runtime: every bundled plugin through the real wasmtime host
//! over a real fjall keyspace, faults, determinism, crash atomicity, component rejection and migrations.

mod bundled_plugins;
mod crash;
mod determinism;
mod entry_determinism;
mod faults;
mod limits;
mod migrations;
mod policies;
mod rejection;
mod support;
