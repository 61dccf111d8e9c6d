//! Test plugin: version 2 of the key-value state machine, made to show a deploy through the log.
//!
//! It speaks the same commands and queries as `plugins/kv` (`iroh-raft-kv-types`), with two
//! visible differences, so a test can tell which version handled what:
//!
//! - `migrate` rewrites every stored value `v` to `m:v` (data written by version 1);
//! - `apply` stores every value it writes as `v2:v`.
//!
//! So after a deploy at index *D*, a key last written before *D* reads `m:…` and one written after
//! it reads `v2:…`, on every replica alike.
#![no_std]
extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;
use iroh_raft_kv_types::{KvAccess, KvRead};
use iroh_raft_plugin_api::{ApplyContext, Error, QueryContext, Result, StateMachine};

struct KvV2;

impl StateMachine for KvV2 {
    fn apply(ctx: &mut ApplyContext, _index: u64, command: &[u8]) -> Result<Vec<u8>> {
        iroh_raft_kv_types::apply(&mut Writer(ctx), command).map_err(Error::new)
    }

    fn query(ctx: &QueryContext, request: &[u8]) -> Result<Vec<u8>> {
        iroh_raft_kv_types::query(&Reader(ctx), request).map_err(Error::new)
    }

    fn migrate(ctx: &mut ApplyContext, _from_version: &str) -> Result<()> {
        // Read everything first: the rewrite must not feed the scan its own writes.
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = ctx.scan(b"", None).collect();
        for (key, value) in pairs {
            ctx.put(&key, &prefixed(b"m:", &value))?;
        }
        Ok(())
    }
}

fn prefixed(prefix: &[u8], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(prefix.len() + value.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(value);
    out
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
        self.0
            .put(key, &prefixed(b"v2:", value))
            .map_err(Error::into_message)
    }

    fn delete(&mut self, key: &[u8]) -> bool {
        self.0.delete(key)
    }
}

iroh_raft_plugin_api::export_state_machine!(KvV2);
