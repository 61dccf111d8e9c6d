//! A replicated counter: the smallest useful state machine, and the one to copy.
//!
//! Command: a postcard `i64` to add. Query: anything; both answer the new or current total.
#![no_std]
extern crate alloc;

use alloc::vec::Vec;
use iroh_raft_plugin_api::{ApplyContext, QueryContext, Result, StateMachine, codec};

const TOTAL: &[u8] = b"total";

struct Counter;

impl StateMachine for Counter {
    fn apply(ctx: &mut ApplyContext, _index: u64, command: &[u8]) -> Result<Vec<u8>> {
        let add: i64 = codec::decode(command)?;
        let total = ctx.get_as::<i64>(TOTAL)?.unwrap_or(0).wrapping_add(add);
        ctx.put_as(TOTAL, &total)?;
        codec::encode(&total)
    }

    fn query(ctx: &QueryContext, _request: &[u8]) -> Result<Vec<u8>> {
        codec::encode(&ctx.get_as::<i64>(TOTAL)?.unwrap_or(0))
    }
}

iroh_raft_plugin_api::export_state_machine!(Counter);
