//! A state machine that does nothing per entry: `apply` answers an empty response without touching
//! the keyspace, and `query` echoes the request. Running it measures the host's own per-entry cost.
#![no_std]
extern crate alloc;

use alloc::vec::Vec;
use iroh_raft_plugin_api::{ApplyContext, QueryContext, Result, StateMachine};

struct Noop;

impl StateMachine for Noop {
    fn apply(_ctx: &mut ApplyContext, _index: u64, _command: &[u8]) -> Result<Vec<u8>> {
        Ok(Vec::new())
    }

    fn query(_ctx: &QueryContext, request: &[u8]) -> Result<Vec<u8>> {
        Ok(request.to_vec())
    }
}

iroh_raft_plugin_api::export_state_machine!(Noop);
