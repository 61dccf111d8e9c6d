//! The bundled key-value state machine: a thin adapter that runs the logic of
//! `iroh-raft-kv-types` over the plugin's keyspace.
//!
//! Commands and queries are the postcard messages of `iroh-raft-kv-types`; this crate owns only the
//! mapping of its storage traits onto the SDK's contexts. The query side gets a `Reader`, which
//! implements only `KvRead`, so a write during a query does not compile. It names what each
//! command and query touches (`key/…`, `prefix/…`) for the access policy.
#![no_std]
extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use iroh_raft_kv_types::{KvAccess, KvRead};
use iroh_raft_plugin_api::{ApplyContext, Error, QueryContext, Result, StateMachine};

struct Kv;

impl StateMachine for Kv {
    fn apply(ctx: &mut ApplyContext, _index: u64, command: &[u8]) -> Result<Vec<u8>> {
        iroh_raft_kv_types::apply(&mut Writer(ctx), command).map_err(Error::new)
    }

    fn query(ctx: &QueryContext, request: &[u8]) -> Result<Vec<u8>> {
        iroh_raft_kv_types::query(&Reader(ctx), request).map_err(Error::new)
    }

    fn command_resources(command: &[u8]) -> Result<Option<Vec<String>>> {
        iroh_raft_kv_types::command_resources(command)
            .map(Some)
            .map_err(Error::new)
    }

    fn query_resources(request: &[u8]) -> Result<Option<Vec<String>>> {
        iroh_raft_kv_types::query_resources(request)
            .map(Some)
            .map_err(Error::new)
    }
}

/// The query's read-only snapshot of the keyspace.
struct Reader<'a>(&'a QueryContext);

/// The current apply transaction.
struct Writer<'a>(&'a mut ApplyContext);

impl KvRead for Reader<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0.get(key)
    }

    fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        // Pages no larger than the caller takes: each value may be up to max_value_bytes.
        self.0
            .scan(start, end)
            .pages_of(limit)
            .take(limit)
            .collect()
    }

    fn scan_keys(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Vec<Vec<u8>> {
        self.0.scan_keys(start, end).take(limit).collect()
    }
}

impl KvRead for Writer<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        Reader(self.0).get(key)
    }

    fn scan(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        Reader(self.0).scan(start, end, limit)
    }

    fn scan_keys(&self, start: &[u8], end: Option<&[u8]>, limit: usize) -> Vec<Vec<u8>> {
        Reader(self.0).scan_keys(start, end, limit)
    }
}

impl KvAccess for Writer<'_> {
    fn put(&mut self, key: &[u8], value: &[u8]) -> core::result::Result<(), String> {
        self.0.put(key, value).map_err(Error::into_message)
    }

    fn delete(&mut self, key: &[u8]) -> bool {
        self.0.delete(key)
    }
}

iroh_raft_plugin_api::export_state_machine!(Kv);
