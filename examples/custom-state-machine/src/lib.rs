//! A custom state machine for iroh-raft: named tallies. The walk-through in `README.md` builds it,
//! deploys it to a running cluster and uses it.
//!
//! Commands and queries are UTF-8 text, so the plain `iroh-raft write`/`read` commands can drive
//! it:
//!
//! | command | effect | response |
//! | --- | --- | --- |
//! | `add <name> <n>` | adds `n` (may be negative) to tally `name` | the new total |
//! | `reset <name>` | removes tally `name` | its last total |
//!
//! | query | answer |
//! | --- | --- |
//! | `<name>` | the total (0 if absent) |
//! | empty | every tally, `name=total` per line, in name order |
//!
//! Its keys all start with `tally/`, so it leaves alone whatever the plugin it replaces stored (the
//! keyspace is the cluster's, and survives deploys). It has no `migrate`: there is nothing of an
//! earlier version to convert (see `plugins/kv-v2` for one that rewrites stored data).
#![no_std]
extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use iroh_raft_plugin_api::{ApplyContext, Error, QueryContext, Result, StateMachine};

/// Keys of this plugin start with this, so they never collide with other data.
const PREFIX: &[u8] = b"tally/";

struct Tally;

fn key(name: &str) -> Vec<u8> {
    let mut key = PREFIX.to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

fn total(ctx: &QueryContext, name: &str) -> Result<i64> {
    Ok(ctx.get_as::<i64>(&key(name))?.unwrap_or(0))
}

fn text(bytes: &[u8]) -> Result<&str> {
    core::str::from_utf8(bytes).map_err(|_| Error::new("commands are UTF-8 text"))
}

impl StateMachine for Tally {
    fn apply(ctx: &mut ApplyContext, _index: u64, command: &[u8]) -> Result<Vec<u8>> {
        let mut words = text(command)?.split_whitespace();
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("add"), Some(name), Some(n), None) => {
                let n: i64 = n
                    .parse()
                    .map_err(|_| Error::new(format!("`{n}` is not a whole number")))?;
                let now = total(ctx, name)?.wrapping_add(n);
                ctx.put_as(&key(name), &now)?;
                Ok(format!("{now}").into_bytes())
            }
            (Some("reset"), Some(name), None, None) => {
                let last = total(ctx, name)?;
                ctx.delete(&key(name));
                Ok(format!("{last}").into_bytes())
            }
            _ => Err(Error::new(
                "unknown command: expected `add <name> <n>` or `reset <name>`",
            )),
        }
    }

    fn query(ctx: &QueryContext, request: &[u8]) -> Result<Vec<u8>> {
        let name = text(request)?.trim();
        if !name.is_empty() {
            return Ok(format!("{}", total(ctx, name)?).into_bytes());
        }
        let mut out = String::new();
        for (key, value) in ctx.scan_prefix(PREFIX) {
            let name = String::from_utf8_lossy(&key[PREFIX.len()..]);
            let value: i64 = iroh_raft_plugin_api::codec::decode(&value)?;
            out.push_str(&format!("{name}={value}\n"));
        }
        Ok(out.into_bytes())
    }
}

iroh_raft_plugin_api::export_state_machine!(Tally);
